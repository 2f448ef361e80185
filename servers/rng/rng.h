/* SPDX-License-Identifier: MIT */
/*
 * isola-rng's sandbox list, in a header so tests/unit/test_seccomp.c
 * installs the very filter the server does (servers/rng/main.c).
 */
#ifndef ISOLA_SERVERS_RNG_RNG_H
#define ISOLA_SERVERS_RNG_RNG_H

/* What isola-rng's seccomp filter allows beyond the vhost-user back-end's
 * own list (sandbox_lock, servers/rng/README.md): the entropy itself. */
static const char *const rng_sandbox_syscalls[] = {"getrandom"}; /* also in the base list */

#endif
