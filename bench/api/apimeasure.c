// SPDX-License-Identifier: MIT
/*
 * apimeasure: time one VMM process through its control API.
 *
 *   apimeasure ready SOCK -- CMD [ARG]...
 *       start CMD (which must serve the API on SOCK), connect and GET / until
 *       it answers 200, then SIGKILL it: the CPU time wait4 reports is the
 *       process's whole cost up to "API ready" (all threads, user + sys).
 *       -> "ready_us=N cpu_us=N user_us=N sys_us=N status=N"
 *   apimeasure boot SOCK KERNEL MEM_MIB -- CMD [ARG]...
 *       as ready, then PUT /boot-source and /machine-config, then
 *       InstanceStart; waits for the process to exit (the guest's debug-exit).
 *       start_exit_us (InstanceStart sent -> process reaped) is an upper bound
 *       for InstanceStart -> first guest instruction; it includes the
 *       guest's exit and the VMM's tear-down.
 *       -> "ready_us=N start_resp_us=N start_exit_us=N total_us=N cpu_us=N status=N"
 *   apimeasure cli -- CMD [ARG]...
 *       start -> exit wall time and CPU time of a plain command (isola run).
 *       -> "total_us=N cpu_us=N status=N"
 *
 * CMD's stdin is /dev/null, stdout and stderr /dev/null (APIMEASURE_LOG=FILE
 * keeps them).  Times are CLOCK_MONOTONIC from just before fork().  The API
 * socket is polled every 20 us; each attempt is a connect(2), so the
 * figure has ~20 us of resolution.  status is the exit status or 128+signal
 * (137 after the SIGKILL of "ready").
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

static pid_t spawn(char **argv)
{
	const char *log = getenv("APIMEASURE_LOG");
	int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
	int out = open(log ? log : "/dev/null", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	pid_t pid;

	if (in < 0 || out < 0) {
		perror("apimeasure: open");
		exit(2);
	}
	pid = fork();
	if (pid == 0) {
		dup2(in, 0);
		dup2(out, 1);
		dup2(out, 2);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(in);
	close(out);
	if (pid < 0) {
		perror("apimeasure: fork");
		exit(2);
	}
	return pid;
}

static int api_connect(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		return -1;
	}
	return fd;
}

/* One request on a fresh connection; returns the HTTP status, -1 on error. */
static int api_request(const char *sock, const char *method, const char *path, const char *body)
{
	char req[8192], resp[8192];
	size_t got = 0;
	int fd = api_connect(sock), n, status = -1;

	if (fd < 0)
		return -1;
	n = snprintf(req, sizeof(req),
		     "%s %s HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n"
		     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
		     method, path, body ? strlen(body) : 0, body ? body : "");
	if (write(fd, req, n) != n)
		goto out;
	/* Headers are enough: the status line is all we need. */
	while (got < sizeof(resp) - 1) {
		ssize_t r = read(fd, resp + got, sizeof(resp) - 1 - got);

		if (r <= 0)
			break;
		got += r;
		resp[got] = 0;
		if (strstr(resp, "\r\n\r\n"))
			break;
	}
	resp[got] = 0;
	if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1)
		status = -1;
out:
	close(fd);
	return status;
}

/* Poll until GET / answers 200; returns the time, or -1 if the process died
 * or 10 s passed. */
static long long wait_ready(const char *sock, pid_t pid)
{
	const struct timespec pause = {0, 20000};
	long long deadline = now_us() + 10000000;

	while (now_us() < deadline) {
		siginfo_t info = {0};

		if (api_request(sock, "GET", "/", NULL) == 200)
			return now_us();
		if (!waitid(P_PID, pid, &info, WEXITED | WNOHANG | WNOWAIT) && info.si_pid == pid)
			return -1;
		nanosleep(&pause, NULL);
	}
	return -1;
}

static int reap(pid_t pid, struct rusage *ru)
{
	int status;

	while (wait4(pid, &status, 0, ru) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static long long tv_us(struct timeval tv)
{
	return tv.tv_sec * 1000000LL + tv.tv_usec;
}

static char **after_dashes(int argc, char **argv, int from)
{
	for (int i = from; i < argc - 1; i++)
		if (!strcmp(argv[i], "--"))
			return argv + i + 1;
	fprintf(stderr, "apimeasure: missing -- CMD\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct rusage ru;
	long long start, ready;
	const char *sock;
	pid_t pid;
	int status;

	if (argc < 3) {
		fprintf(stderr, "usage: apimeasure ready|boot|cli ... -- CMD [ARG]...\n");
		return 2;
	}
	if (!strcmp(argv[1], "cli")) {
		char **cmd = after_dashes(argc, argv, 2);

		start = now_us();
		pid = spawn(cmd);
		status = reap(pid, &ru);
		printf("total_us=%lld cpu_us=%lld status=%d\n", now_us() - start,
		       tv_us(ru.ru_utime) + tv_us(ru.ru_stime), status);
		return 0;
	}
	sock = argv[2];
	unlink(sock);
	if (!strcmp(argv[1], "ready")) {
		char **cmd = after_dashes(argc, argv, 3);

		start = now_us();
		pid = spawn(cmd);
		ready = wait_ready(sock, pid);
		kill(pid, SIGKILL);
		status = reap(pid, &ru);
		unlink(sock);
		printf("ready_us=%lld cpu_us=%lld user_us=%lld sys_us=%lld status=%d\n",
		       ready < 0 ? -1 : ready - start, tv_us(ru.ru_utime) + tv_us(ru.ru_stime),
		       tv_us(ru.ru_utime), tv_us(ru.ru_stime), status);
		return ready < 0;
	}
	if (!strcmp(argv[1], "boot") && argc > 5) {
		char **cmd = after_dashes(argc, argv, 5);
		char body[4600];
		long long sent, resp_at;
		int code;

		start = now_us();
		pid = spawn(cmd);
		ready = wait_ready(sock, pid);
		if (ready < 0) {
			kill(pid, SIGKILL);
			reap(pid, &ru);
			fprintf(stderr, "apimeasure: API never ready\n");
			return 1;
		}
		snprintf(body, sizeof(body), "{\"kernel_image_path\": \"%s\"}", argv[3]);
		code = api_request(sock, "PUT", "/boot-source", body);
		snprintf(body, sizeof(body), "{\"vcpu_count\": 1, \"mem_size_mib\": %s}", argv[4]);
		if (code == 204)
			code = api_request(sock, "PUT", "/machine-config", body);
		if (code != 204) {
			kill(pid, SIGKILL);
			reap(pid, &ru);
			unlink(sock);
			fprintf(stderr, "apimeasure: configuration refused (HTTP %d)\n", code);
			return 1;
		}
		sent = now_us();
		code = api_request(sock, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}");
		resp_at = now_us();
		status = reap(pid, &ru);
		unlink(sock);
		printf("ready_us=%lld start_resp_us=%lld start_exit_us=%lld total_us=%lld cpu_us=%lld "
		       "status=%d start_http=%d\n",
		       ready - start, resp_at - sent, now_us() - sent, now_us() - start,
		       tv_us(ru.ru_utime) + tv_us(ru.ru_stime), status, code);
		return 0;
	}
	fprintf(stderr, "apimeasure: unknown mode %s\n", argv[1]);
	return 2;
}
