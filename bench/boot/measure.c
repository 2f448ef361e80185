// SPDX-License-Identifier: MIT
/*
 * measure: run one command, print its wall time and max RSS.
 *
 *   measure [-o FILE] CMD [ARG]...
 *   -> "wall_us=N maxrss_kib=N status=N" on stdout
 *
 * The command's stdin is /dev/null; its stdout and stderr go to FILE (or
 * /dev/null).  status is the exit status, or 128+signal.
 *
 * Why C and fork(): ru_maxrss of a child counts the pages its process held
 * before exec.  A fork from Python carries ~10 MiB of the interpreter's
 * anonymous memory into the child (and posix_spawn/vfork charges the whole
 * parent mm), which would hide a VMM's 2 MiB.  Forked from this small
 * program, the child starts with a few pages.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

int main(int argc, char **argv)
{
	const char *out_path = "/dev/null";
	struct rusage ru;
	long long start, end;
	int status, arg = 1, in, out;
	pid_t pid;

	if (argc > 2 && !strcmp(argv[1], "-o")) {
		out_path = argv[2];
		arg = 3;
	}
	if (arg >= argc) {
		fprintf(stderr, "usage: measure [-o FILE] CMD [ARG]...\n");
		return 2;
	}
	in = open("/dev/null", O_RDONLY | O_CLOEXEC);
	out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (in < 0 || out < 0) {
		perror("measure: open");
		return 2;
	}
	start = now_us();
	pid = fork();
	if (pid == 0) {
		dup2(in, 0);
		dup2(out, 1);
		dup2(out, 2);
		execvp(argv[arg], argv + arg);
		_exit(127);
	}
	if (pid < 0) {
		perror("measure: fork");
		return 2;
	}
	if (wait4(pid, &status, 0, &ru) < 0) {
		perror("measure: wait4");
		return 2;
	}
	end = now_us();
	printf("wall_us=%lld maxrss_kib=%ld status=%d\n", end - start, ru.ru_maxrss,
	       WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	return 0;
}
