/* SPDX-License-Identifier: MIT */
/* `isola snapshot`: a client of a running isola's API that takes a
 * snapshot of its paused VM (PUT /snapshot/create). */
#ifndef ISOLA_CORE_SNAPSHOT_CLI_H
#define ISOLA_CORE_SNAPSHOT_CLI_H

/* argv[0] is "snapshot"; returns the process's exit status. */
int snapshot_cli_main(int argc, char **argv);

#endif
