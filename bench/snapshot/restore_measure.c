// SPDX-License-Identifier: MIT
/*
 * restore_measure: one restore of a snapshot whose guest writes to COM1 in
 * a loop (loop_guest.S), timed to the first byte the restored guest writes.
 *
 *   restore_measure api ISOLA SOCK STATE MEM ERRFILE
 *     starts `ISOLA --api-sock SOCK` (stdout a pipe: the console), waits
 *     until its API answers (not timed), then timestamps t0 and sends
 *     PUT /snapshot/load {snapshot_path, mem_backend File, resume_vm true}.
 *   restore_measure cli ISOLA - STATE MEM ERRFILE
 *     timestamps t0 before fork() and execs
 *     `ISOLA restore --state STATE --mem MEM --console stdio`.
 *   -> "first_byte_us=N response_us=N status=N" on stdout: from t0 to the
 *      first byte read from the pipe (the restored guest's first OUT), and
 *      to the HTTP response's status line (api; -1 for cli); status is the
 *      HTTP status (api) or 0.  Then the VMM is SIGKILLed and reaped.
 * The VMM's stderr goes to ERRFILE (its "running in N ms" line).
 * CLOCK_MONOTONIC; C (not Python) so the timed path has no interpreter in it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static pid_t spawn(char **argv, int out_fd, const char *errfile)
{
	pid_t pid = fork();

	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);
		int err = open(errfile, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (null < 0 || err < 0)
			_exit(127);
		dup2(null, 0);
		dup2(out_fd, 1);
		dup2(err, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

static int connect_unix(const char *path)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || strlen(path) >= sizeof(addr.sun_path))
		return -1;
	strcpy(addr.sun_path, path);
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int send_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* An API answer to GET / (the process is up), within ~10 s. */
static int wait_api(const char *sock)
{
	static const char req[] = "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";

	for (int i = 0; i < 2000; i++) {
		int fd = connect_unix(sock);
		char buf[64];

		if (fd >= 0 && !send_all(fd, req, sizeof(req) - 1) &&
		    read(fd, buf, sizeof(buf)) > 0) {
			close(fd);
			return 0;
		}
		if (fd >= 0)
			close(fd);
		usleep(5000);
	}
	return -1;
}

int main(int argc, char **argv)
{
	long long t0, first = -1, response = -1;
	int pipefd[2], api = -1, status = 0;
	char *vmm_argv[12];
	pid_t pid;

	if (argc != 7 || (strcmp(argv[1], "api") && strcmp(argv[1], "cli"))) {
		fprintf(stderr, "usage: restore_measure api|cli ISOLA SOCK|- STATE MEM ERRFILE\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return 2;
	if (!strcmp(argv[1], "api")) {
		char body[8192], req[9000];
		int n;

		unlink(argv[3]);
		vmm_argv[0] = argv[2];
		vmm_argv[1] = "--api-sock";
		vmm_argv[2] = argv[3];
		vmm_argv[3] = NULL;
		pid = spawn(vmm_argv, pipefd[1], argv[6]);
		close(pipefd[1]);
		if (pid < 0 || wait_api(argv[3])) {
			fprintf(stderr, "restore_measure: %s --api-sock did not answer\n", argv[2]);
			goto out;
		}
		snprintf(
		    body, sizeof(body),
		    "{\"snapshot_path\": \"%s\", \"mem_backend\": {\"backend_type\": \"File\", "
		    "\"backend_path\": \"%s\"}, \"resume_vm\": true}",
		    argv[4], argv[5]);
		n = snprintf(req, sizeof(req),
			     "PUT /snapshot/load HTTP/1.1\r\nHost: localhost\r\nContent-Type: "
			     "application/json\r\nContent-Length: %zu\r\n\r\n%s",
			     strlen(body), body);
		api = connect_unix(argv[3]);
		t0 = now_us();
		if (api < 0 || send_all(api, req, (size_t)n)) {
			fprintf(stderr, "restore_measure: cannot send the request\n");
			goto out;
		}
	} else {
		vmm_argv[0] = argv[2];
		vmm_argv[1] = "restore";
		vmm_argv[2] = "--state";
		vmm_argv[3] = argv[4];
		vmm_argv[4] = "--mem";
		vmm_argv[5] = argv[5];
		vmm_argv[6] = "--console";
		vmm_argv[7] = "stdio";
		vmm_argv[8] = NULL;
		t0 = now_us();
		pid = spawn(vmm_argv, pipefd[1], argv[6]);
		close(pipefd[1]);
		if (pid < 0)
			return 2;
	}
	while (first < 0 || (api >= 0 && response < 0)) {
		struct pollfd fds[2] = {{.fd = pipefd[0], .events = POLLIN},
					{.fd = api, .events = POLLIN}};
		char buf[4096];

		if (first >= 0)
			fds[0].fd = -1;
		if (response >= 0)
			fds[1].fd = -1;
		if (poll(fds, 2, 10000) <= 0) {
			fprintf(stderr, "restore_measure: nothing within 10 s\n");
			break;
		}
		if (fds[0].revents) {
			if (read(pipefd[0], buf, sizeof(buf)) <= 0) {
				fprintf(stderr,
					"restore_measure: the console closed without a byte\n");
				break;
			}
			first = now_us() - t0;
		}
		if (fds[1].revents) {
			ssize_t r = read(api, buf, sizeof(buf) - 1);

			response = now_us() - t0;
			if (r <= 0 || (buf[r] = '\0', sscanf(buf, "HTTP/1.%*d %d", &status) != 1))
				status = -1;
		}
	}
out:
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	printf("first_byte_us=%lld response_us=%lld status=%d\n", first, response, status);
	return first < 0 ? 1 : 0;
}
