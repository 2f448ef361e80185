// SPDX-License-Identifier: MIT
/*
 * measure: run one command, print its wall time, max RSS and page faults.
 *
 *   measure [-o FILE] [-t SECONDS] [-p] CMD [ARG]...
 *   -> "wall_us=N maxrss_kib=N minflt=N majflt=N user_us=N sys_us=N
 *       pgfault=N status=N" on stdout, and with -p
 *      " first_byte_us=N exit_after_byte_us=N"
 *
 * The command's stdin is /dev/null; its stdout and stderr go to FILE (or
 * /dev/null).  With -p its stdout is a pipe instead (drained, discarded):
 * first_byte_us is from before fork() to the first byte read from it (e.g.
 * a guest's first console byte: its first instruction), exit_after_byte_us
 * from that byte to the command's exit (its pidfd becoming readable, which
 * does not wait for children the command left behind); -1 without a byte.  status is the exit status, or 128+signal; with -t the
 * command is SIGKILLed after SECONDS (status 137).  minflt, majflt and the
 * CPU times are wait4's: the command's own threads and the children it
 * reaped.  pgfault is the rise of the host's /proc/vmstat pgfault around
 * the run: every process's faults, including the kernel's own on behalf of
 * the command (e.g. KVM populating guest memory through GUP), which is
 * counted in min_flt of the thread that caused it too.
 *
 * Why C and fork(): ru_maxrss of a child counts the pages its process held
 * before exec.  A fork from Python carries ~10 MiB of the interpreter's
 * anonymous memory into the child (and posix_spawn/vfork charges the whole
 * parent mm), which would hide a VMM's 2 MiB.  Forked from this small
 * program, the child starts with a few pages.  bench/linux links it
 * statically, for L1's busybox initramfs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

/* /proc/vmstat's pgfault, or -1 where there is none */
static long long vmstat_pgfault(void)
{
	long long value = -1;
	char line[128];
	FILE *f = fopen("/proc/vmstat", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "pgfault %lld", &value) == 1)
			break;
	fclose(f);
	return value;
}

static void on_alarm(int sig)
{
	(void)sig; /* only interrupts wait4 */
}

static long long timeval_us(struct timeval tv)
{
	return tv.tv_sec * 1000000LL + tv.tv_usec;
}

/*
 * -p: poll the command's stdout (a pipe) and its pidfd; note when the first
 * byte arrives and when the command exits.  On SIGALRM (-t) it is killed.
 */
static void watch(pid_t pid, int out, long long *byte_at, long long *exit_at)
{
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	struct pollfd fds[2] = {{.fd = pidfd, .events = POLLIN}, {.fd = out, .events = POLLIN}};
	char buf[4096];

	if (pidfd < 0)
		return; /* no pidfd: wall time only */
	while (*exit_at < 0) {
		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				kill(pid, SIGKILL);
			continue;
		}
		if (fds[1].revents) {
			ssize_t n = read(out, buf, sizeof(buf));

			if (n > 0 && *byte_at < 0)
				*byte_at = now_us();
			if (n <= 0)
				fds[1].fd = -1; /* EOF: its writers are gone */
		}
		if (fds[0].revents & POLLIN)
			*exit_at = now_us();
	}
	close(pidfd);
}

int main(int argc, char **argv)
{
	const char *out_path = "/dev/null";
	struct sigaction sa = {.sa_handler = on_alarm};
	unsigned int timeout_s = 0;
	long long start, end, faults_before, faults_after, byte_at = -1, exit_at = -1;
	struct rusage ru;
	int status, opt, in, out, pipe_out[2] = {-1, -1};
	bool watch_output = false;
	pid_t pid;

	while ((opt = getopt(argc, argv, "+o:t:p")) != -1) {
		if (opt == 'p')
			watch_output = true;
		else if (opt == 'o')
			out_path = optarg;
		else if (opt == 't')
			timeout_s = (unsigned int)strtoul(optarg, NULL, 10);
		else
			optind = argc;
	}
	if (optind >= argc) {
		fprintf(stderr, "usage: measure [-o FILE] [-t SECONDS] [-p] CMD [ARG]...\n");
		return 2;
	}
	in = open("/dev/null", O_RDONLY | O_CLOEXEC);
	out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (watch_output && pipe2(pipe_out, O_CLOEXEC) < 0) {
		perror("measure: pipe2");
		return 2;
	}
	if (in < 0 || out < 0) {
		perror("measure: open");
		return 2;
	}
	sigaction(SIGALRM, &sa, NULL); /* no SA_RESTART: wait4 returns EINTR */
	faults_before = vmstat_pgfault();
	start = now_us();
	pid = fork();
	if (pid == 0) {
		dup2(in, 0);
		dup2(watch_output ? pipe_out[1] : out, 1);
		dup2(out, 2);
		execvp(argv[optind], argv + optind);
		_exit(127);
	}
	if (pid < 0) {
		perror("measure: fork");
		return 2;
	}
	alarm(timeout_s);
	if (watch_output) {
		close(pipe_out[1]);
		watch(pid, pipe_out[0], &byte_at, &exit_at);
	}
	while (wait4(pid, &status, 0, &ru) < 0) {
		if (errno != EINTR) {
			perror("measure: wait4");
			return 2;
		}
		kill(pid, SIGKILL);
	}
	end = now_us();
	faults_after = vmstat_pgfault();
	printf("wall_us=%lld maxrss_kib=%ld minflt=%ld majflt=%ld user_us=%lld sys_us=%lld "
	       "pgfault=%lld status=%d",
	       end - start, ru.ru_maxrss, ru.ru_minflt, ru.ru_majflt, timeval_us(ru.ru_utime),
	       timeval_us(ru.ru_stime),
	       faults_before < 0 || faults_after < 0 ? -1 : faults_after - faults_before,
	       WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	if (watch_output)
		printf(" first_byte_us=%lld exit_after_byte_us=%lld", byte_at < 0 ? -1 : byte_at - start,
		       byte_at < 0 || exit_at < 0 ? -1 : exit_at - byte_at);
	printf("\n");
	return 0;
}
