// SPDX-License-Identifier: MIT
/*
 * `isola snapshot --api-sock SOCK --state FILE --mem FILE`: one
 * PUT /snapshot/create on a running isola's API socket (docs/api.md), the
 * same request an orchestrator sends.  The VM must be paused
 * (PATCH /vm Paused); the API says so otherwise, and so does this command.
 */
#define _GNU_SOURCE
#include "core/snapshot_cli.h"

#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "isola/abi.h"
#include "lib/log.h"

#define SNAPSHOT_CLI_REPLY_MAX 8192

static void snapshot_cli_help(void)
{
	printf(
	    "Usage: isola snapshot --api-sock SOCK --state FILE --mem FILE [--diff]\n"
	    "Snapshot the paused VM of the isola serving its API on SOCK: its state\n"
	    "to FILE (--state) and its memory to FILE (--mem), both created or\n"
	    "truncated (PUT /snapshot/create, docs/snapshot.md).  With --diff the\n"
	    "memory file holds only the pages written since the last snapshot (or\n"
	    "the restore), to merge onto that one's (snapshot_type Diff; the VM\n"
	    "must track dirty pages: machine-config track_dirty_pages, or\n"
	    "'isola restore --track-dirty-pages').  Pause it first:\n"
	    "  curl --unix-socket SOCK -X PATCH -d '{\"state\": \"Paused\"}' http://localhost/vm\n"
	    "Restore with 'isola restore --state FILE --mem FILE'.\n"
	    "Exit status 0 on success, %d with the API's reason otherwise.\n",
	    ISOLA_EXIT_VMM_ERROR);
}

/* path as the API's process must see it: absolute (it has its own cwd). */
static char *absolute(const char *path)
{
	char cwd[PATH_MAX], *out;

	if (path[0] == '/' || !getcwd(cwd, sizeof(cwd)))
		return strdup(path);
	return asprintf(&out, "%s/%s", cwd, path) < 0 ? NULL : out;
}

static int connect_api(const char *sock_path)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(sock_path) >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	memcpy(addr.sun_path, sock_path, strlen(sock_path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int ret = -errno;

		close(fd);
		return ret;
	}
	return fd;
}

/* One request; the status code, the reply's body in body (NUL-ended), or
 * -errno. */
static int http_put(int fd, const char *path, const char *json, char *reply, size_t cap,
		    const char **body)
{
	char *request;
	size_t len = 0;
	int n, status;

	n = asprintf(
	    &request,
	    "PUT %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
	    "Accept: application/json\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
	    path, strlen(json), json);
	if (n < 0)
		return -ENOMEM;
	for (int done = 0; done < n;) {
		ssize_t w = write(fd, request + done, (size_t)(n - done));

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			free(request);
			return w < 0 ? -errno : -EIO;
		}
		done += (int)w;
	}
	free(request);
	while (len + 1 < cap) {
		ssize_t r = read(fd, reply + len, cap - 1 - len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	reply[len] = '\0';
	if (sscanf(reply, "HTTP/1.%*d %d", &status) != 1)
		return -EPROTO;
	*body = strstr(reply, "\r\n\r\n");
	*body = *body ? *body + 4 : "";
	return status;
}

int snapshot_cli_main(int argc, char **argv)
{
	const char *sock = NULL, *state = NULL, *mem = NULL, *body = "";
	char *state_abs = NULL, *mem_abs = NULL, *reply = NULL;
	json_object *req, *doc, *msg;
	int fd, status, ret = ISOLA_EXIT_VMM_ERROR;
	bool diff = false;

	for (int i = 1; i < argc; i++) {
		const char **slot = !strcmp(argv[i], "--api-sock") ? &sock
				    : !strcmp(argv[i], "--state")  ? &state
				    : !strcmp(argv[i], "--mem")	   ? &mem
								   : NULL;

		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			snapshot_cli_help();
			return 0;
		}
		if (!strcmp(argv[i], "--diff")) {
			diff = true;
			continue;
		}
		if (!slot || i + 1 >= argc) {
			log_error("snapshot: %s '%s'; see 'isola snapshot --help'",
				  slot ? "missing value for" : "unknown option", argv[i]);
			return ISOLA_EXIT_VMM_ERROR;
		}
		*slot = argv[++i];
	}
	if (!sock || !state || !mem) {
		log_error("snapshot: --api-sock, --state and --mem are required; see 'isola "
			  "snapshot --help'");
		return ISOLA_EXIT_VMM_ERROR;
	}
	state_abs = absolute(state);
	mem_abs = absolute(mem);
	reply = malloc(SNAPSHOT_CLI_REPLY_MAX);
	req = json_object_new_object();
	if (!state_abs || !mem_abs || !reply || !req) {
		log_error("snapshot: out of memory");
		goto out;
	}
	json_object_object_add(req, "snapshot_path", json_object_new_string(state_abs));
	json_object_object_add(req, "mem_file_path", json_object_new_string(mem_abs));
	json_object_object_add(req, "snapshot_type",
			       json_object_new_string(diff ? "Diff" : "Full"));
	fd = connect_api(sock);
	if (fd < 0) {
		log_error("snapshot: --api-sock %s: %s; is an isola --api-sock serving there?",
			  sock, strerror(-fd));
		goto out;
	}
	status = http_put(fd, "/snapshot/create",
			  json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN |
								  JSON_C_TO_STRING_NOSLASHESCAPE),
			  reply, SNAPSHOT_CLI_REPLY_MAX, &body);
	close(fd);
	if (status < 0) {
		log_error("snapshot: --api-sock %s: %s", sock, strerror(-status));
	} else if (status / 100 == 2) {
		printf("snapshot: state in %s, memory in %s\n", state_abs, mem_abs);
		ret = 0;
	} else {
		doc = json_tokener_parse(body);
		msg = NULL;
		if (doc)
			json_object_object_get_ex(doc, "fault_message", &msg);
		log_error("snapshot: %s (HTTP %d)", msg ? json_object_get_string(msg) : body,
			  status);
		json_object_put(doc);
	}
out:
	json_object_put(req);
	free(state_abs);
	free(mem_abs);
	free(reply);
	return ret;
}
