/* SPDX-License-Identifier: MIT */
/* isola's version, and the Firecracker API version it answers as. */
#ifndef ISOLA_CORE_VERSION_H
#define ISOLA_CORE_VERSION_H

#ifndef ISOLA_VERSION
#define ISOLA_VERSION "0.1.0"
#endif

/*
 * The Firecracker release whose API isola's answers follow (docs/api.md's
 * compatibility table says where they differ).  Orchestrators gate on it:
 * Kata Containers reads the second word of `--version`'s first line as a
 * Firecracker version and refuses anything below its minimum.
 */
#define ISOLA_FIRECRACKER_API_VERSION "1.12.0"

/* `isola --version`: that word second, isola's own name and version after. */
#define ISOLA_VERSION_LINE                                                                         \
	"Firecracker-compatible v" ISOLA_FIRECRACKER_API_VERSION " (isola " ISOLA_VERSION ")"

#endif
