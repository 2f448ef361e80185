/* SPDX-License-Identifier: MIT */
/*
 * isola-rng's sandbox list, in a header so tests/unit/test_seccomp.c
 * installs the very filter the server does (servers/rng/main.c).
 */
#ifndef ISOLA_SERVERS_RNG_RNG_H
#define ISOLA_SERVERS_RNG_RNG_H

#include "lib/sandbox.h"

/* What isola-rng's seccomp filter allows beyond the vhost-user back-end's
 * own list (sandbox_lock, servers/rng/README.md): the entropy itself. */
static const char *const rng_sandbox_syscalls[] = {"getrandom"}; /* also in the base list */
static const struct sandbox_allowlist rng_sandbox_allowlist = {
    .syscalls = rng_sandbox_syscalls,
    .nr_syscalls = sizeof(rng_sandbox_syscalls) / sizeof(rng_sandbox_syscalls[0]),
};

#endif
