/* SPDX-License-Identifier: MIT */
/*
 * The system calls the vDSO (vdso(7)) stands in for, which every seccomp
 * allowlist of the core (core/seccomp.c) and of the device servers
 * (lib/sandbox.c) includes, since any thread may read the clock (every log
 * line does, the RTC, the ACPI PM timer, the busy-poll and rate windows).
 *
 * glibc serves clock_gettime, clock_getres, gettimeofday and time from the
 * vDSO without entering the kernel, but the vDSO makes the real system call
 * when the host's clocksource cannot be read from user space: Xen and
 * Hyper-V clocksources, an unstable TSC, a nested L1 on hpet (issue 10: a
 * vCPU thread killed for clock_gettime).  Only reads of the clock: nothing
 * here sets it.
 *
 * getcpu, the vDSO's other entry, is not here: nothing linked into isola or
 * its servers calls sched_getcpu or getcpu (nm on the static binaries).
 */
#ifndef ISOLA_LIB_VDSO_FALLBACK_H
#define ISOLA_LIB_VDSO_FALLBACK_H

#define VDSO_FALLBACK_SYSCALLS "clock_gettime", "clock_getres", "gettimeofday", "time"

#endif
