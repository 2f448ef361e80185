/* SPDX-License-Identifier: MIT */
/*
 * Least privilege for the core's own threads (design.md "Processes and
 * trust", docs/security.md "Least privilege in the core"): each kind of
 * thread gets its own seccomp allowlist, installed by the thread itself once
 * it has done everything that needs more:
 *
 *	core_seccomp_init()             main, before any thread: no_new_privs,
 *	                                the three filters compiled, SIGSYS handler
 *	api thread: core_seccomp_enter(CORE_THREAD_API)   before serving
 *	vm_create(), vm_start()         vCPU threads: core_seccomp_enter(VCPU)
 *	                                before their first KVM_RUN
 *	serve_vm(): core_seccomp_enter(CORE_THREAD_MAIN)  before the event loop
 *
 * A system call outside the calling thread's list traps (SCMP_ACT_TRAP): the
 * handler writes one line naming the thread, the call and the PC to stderr
 * and the process dies of SIGSYS (shell status 159).
 */
#ifndef ISOLA_CORE_SECCOMP_H
#define ISOLA_CORE_SECCOMP_H

#include <stdbool.h>
#include <stddef.h>

enum core_thread {
	CORE_THREAD_MAIN,	 /* the event loop: console, signals, device servers */
	CORE_THREAD_VCPU,	 /* KVM_RUN and the exits it returns */
	CORE_THREAD_API,	 /* the HTTP API on its Unix socket */
	CORE_THREAD_MAIN_REBOOT, /* main with --on-reset reboot: builds VMs again */
	CORE_THREAD_KINDS,
};

/*
 * Set no_new_privs, compile the filters and install the SIGSYS handler; with
 * enabled false, core_seccomp_enter() does nothing (--no-seccomp).  Reads the
 * test-only ISOLA_TEST_FORBIDDEN_SYSCALL=main|vcpu|api.  Call once, from the
 * main thread, before any other thread exists.  0 or -errno with a sentence.
 */
int core_seccomp_init(bool enabled, char *err, size_t errlen);

/* Whether core_seccomp_init() turned the filters on. */
bool core_seccomp_enabled(void);

/*
 * Install the calling thread's filter (index: the vCPU's, for the log line).
 * Without core_seccomp_init() (unit tests, --no-seccomp): returns 0.
 * 0 or -errno; the caller must not go on without its filter.
 */
int core_seccomp_enter(enum core_thread kind, unsigned index);

/* How many system calls a kind of thread may make (docs/security.md). */
unsigned core_seccomp_count(enum core_thread kind);

/*
 * What core_seccomp_init() put in kind's filter, for the golden list in
 * tests/unit/test_seccomp.c: whether system call nr is allowed at all (some
 * only with conditions on their arguments), and the ioctl requests allowed
 * (0-terminated).
 */
bool core_seccomp_allows(enum core_thread kind, int nr);
const unsigned long *core_seccomp_ioctls(enum core_thread kind);

#endif
