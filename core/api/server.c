// SPDX-License-Identifier: MIT
/*
 * The API's HTTP/1.1 server: libmicrohttpd on a Unix socket isola binds
 * itself (MHD_OPTION_LISTEN_SOCKET), served by MHD's own poll thread.  That
 * thread is started by ours (the API thread) after it installed its seccomp
 * filter (core/seccomp.h), so MHD serves nothing unfiltered.  MHD keeps
 * every connection in its event loop, so a stalled
 * client holds only its own connection (dropped after a timeout), and the
 * vCPU threads never meet the API: requests reach the VMM through
 * struct api_vmm_ops.  Bodies are collected here, bounded, then handed to
 * api_handle() whole.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/eventfd.h>
#include <sys/un.h>
#include <unistd.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>

#include <microhttpd.h>

#include "core/api/api_internal.h"
#include "core/seccomp.h"
#include "lib/log.h"

#define API_SERVER_CONNECTIONS 128
#define API_SERVER_TIMEOUT_S 5
/* MHD's per-connection pool holds the request line and headers: a header
 * flood past this gets MHD's "too large" answer and the connection closes. */
#define API_SERVER_CONNECTION_MEMORY (16 * 1024)

struct api_server {
	struct api *api;
	struct MHD_Daemon *daemon;
	int listen_fd;
	int stop_fd; /* eventfd: the API thread stops MHD and returns */
	pthread_t thread;
	bool thread_started;
	sem_t started; /* the API thread has set start_ret */
	int start_ret; /* 0, -EIO (MHD did not start) or the filter's -errno */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	dev_t dev; /* the socket file we created: only that one is removed */
	ino_t ino;
	size_t max_body; /* --http-api-max-payload-size */
};

/* One request on a connection. */
struct api_server_request {
	int early_status; /* 411/400 decided from the headers */
	const char *early_message;
	char early_text[160];
	bool too_big;
	size_t len, cap;
	size_t max_body;
	char *body; /* grown as the bytes come, never past max_body */
};

static enum MHD_Result api_server_send(struct MHD_Connection *conn, int status, char *body,
				       bool deprecated)
{
	struct MHD_Response *response;
	enum MHD_Result ret;

	if (body)
		response =
		    MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
	else
		response = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
	if (!response) {
		free(body);
		return MHD_NO;
	}
	if (body)
		MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	/* Firecracker's micro_http Response::set_deprecation */
	if (deprecated)
		MHD_add_response_header(response, "Deprecation", "true");
	ret = MHD_queue_response(conn, (unsigned)status, response);
	MHD_destroy_response(response);
	return ret;
}

static enum MHD_Result api_server_fault(struct MHD_Connection *conn, int status,
					const char *message)
{
	json_object *doc = json_object_new_object();
	char *body;

	json_object_object_add(doc, "fault_message", json_object_new_string(message));
	body = strdup(json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN |
							      JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(doc);
	return api_server_send(conn, status, body, false);
}

/* PUT and PATCH carry a JSON body: it needs a Content-Length (no chunked
 * bodies, like Firecracker) of at most API_MAX_BODY bytes. */

/* Firecracker's words for a body over its limit (micro_http
 * SizeLimitExceeded), plus what to do. */
static void api_server_too_big(struct api_server_request *req, unsigned long long length)
{
	snprintf(req->early_text, sizeof(req->early_text),
		 "Request payload with size %llu is larger than the limit of %zu allowed by "
		 "server; send at most %zu bytes",
		 length, req->max_body, req->max_body);
	req->early_message = req->early_text;
}
/* Count the headers that frame a body. */
static enum MHD_Result api_server_count_framing(void *cls, enum MHD_ValueKind kind, const char *key,
						const char *value)
{
	unsigned *counts = cls;

	(void)kind;
	(void)value;
	if (key && !strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH))
		counts[0]++;
	else if (key && !strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING))
		counts[1]++;
	return MHD_YES;
}

static void api_server_check_length(struct MHD_Connection *conn, struct api_server_request *req)
{
	unsigned counts[2] = {0, 0};

	/* RFC 9112 §6.3: several Content-Length headers, or one together with
	 * Transfer-Encoding, make the message length ambiguous (a way to
	 * smuggle a second request): refuse. */
	MHD_get_connection_values(conn, MHD_HEADER_KIND, api_server_count_framing, counts);
	if (counts[0] > 1 || (counts[0] && counts[1])) {
		req->early_status = 400;
		req->early_message =
		    "the request has more than one Content-Length, or Content-Length "
		    "with Transfer-Encoding; send exactly one Content-Length";
		return;
	}
	const char *text =
	    MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	unsigned long long length;
	char *end;

	if (!text) {
		req->early_status = 411;
		req->early_message = "PUT and PATCH need a Content-Length header";
		return;
	}
	errno = 0;
	length = strtoull(text, &end, 10);
	if (errno || end == text || *end || *text < '0' || *text > '9') {
		req->early_status = 400;
		req->early_message = "the Content-Length header is not a number";
	} else if (length > req->max_body) {
		/* Firecracker (micro_http's payload limit) answers 400, not 413 */
		req->early_status = 400;
		api_server_too_big(req, length);
	}
}

/* Percent-decode the URL in place, but leave "%00" as it is: a NUL would cut
 * the path short ("/%00" must not be served as "/"). */
static size_t api_server_unescape(void *cls, struct MHD_Connection *conn, char *uri)
{
	char *out = uri;

	(void)cls;
	(void)conn;
	for (const char *in = uri; *in; in++) {
		if (in[0] == '%' && isxdigit((unsigned char)in[1]) &&
		    isxdigit((unsigned char)in[2]) && !(in[1] == '0' && in[2] == '0')) {
			char hex[3] = {in[1], in[2], 0};

			*out++ = (char)strtol(hex, NULL, 16);
			in += 2;
		} else {
			*out++ = *in;
		}
	}
	*out = '\0';
	return (size_t)(out - uri);
}

static enum MHD_Result api_server_access(void *cls, struct MHD_Connection *conn, const char *url,
					 const char *method, const char *version,
					 const char *upload_data, size_t *upload_data_size,
					 void **con_cls)
{
	struct api_server *server = cls;
	struct api_server_request *req = *con_cls;
	struct api_response resp;

	(void)version;
	if (!req) {
		req = malloc(sizeof(*req));
		if (!req)
			return MHD_NO;
		req->early_status = 0;
		req->too_big = false;
		req->len = req->cap = 0;
		req->body = NULL;
		req->max_body = server->max_body;
		*con_cls = req;
		if (!strcmp(method, "PUT") || !strcmp(method, "PATCH"))
			api_server_check_length(conn, req);
		if (req->early_status) /* answer now; MHD drops the unread body */
			return api_server_fault(conn, req->early_status, req->early_message);
		return MHD_YES;
	}
	if (*upload_data_size) {
		size_t need = req->len + *upload_data_size;

		if (need > req->max_body) {
			req->too_big = true;
		} else {
			if (need > req->cap) {
				size_t cap = req->cap ? req->cap * 2 : 4096;
				char *body;

				cap = cap < need ? need : cap > req->max_body ? req->max_body : cap;
				body = realloc(req->body, cap);
				if (!body)
					return MHD_NO;
				req->body = body;
				req->cap = cap;
			}
			memcpy(req->body + req->len, upload_data, *upload_data_size);
		}
		req->len += *upload_data_size;
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (req->too_big) {
		api_server_too_big(req, req->len);
		return api_server_fault(conn, 400, req->early_message);
	}
	api_handle(server->api, method, url, req->body, req->len, &resp);
	return api_server_send(conn, resp.status, resp.body, resp.deprecated);
}

static void api_server_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
				 enum MHD_RequestTerminationCode code)
{
	(void)cls;
	(void)conn;
	(void)code;
	if (*con_cls)
		free(((struct api_server_request *)*con_cls)->body);
	free(*con_cls);
	*con_cls = NULL;
}

static void api_server_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];

	(void)cls;
	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	log_debug("API server: %s", line);
}

static int api_server_bind(struct api_server *server, const char *path, char *err, size_t errlen)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	struct stat st;

	if (!*path || strlen(path) >= sizeof(addr.sun_path))
		return api_fail(err, errlen, "--api-sock %s: a socket path is 1 to %zu bytes", path,
				sizeof(addr.sun_path) - 1);
	strcpy(addr.sun_path, path);
	server->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (server->listen_fd < 0)
		return api_fail(err, errlen, "--api-sock: socket: %s", strerror(errno));
	/* bind() never replaces a file: an existing path (a stale socket of
	 * another isola, or anyone's file) is refused, not unlinked. */
	if (bind(server->listen_fd, (struct sockaddr *)&addr, sizeof(addr))) {
		if (errno == EADDRINUSE)
			return api_fail(err, errlen,
					"--api-sock %s: the path exists; remove it if no VMM uses "
					"it, or choose another path",
					path);
		return api_fail(err, errlen, "--api-sock %s: bind: %s", path, strerror(errno));
	}
	if (!stat(path, &st)) {
		server->dev = st.st_dev;
		server->ino = st.st_ino;
	}
	strcpy(server->path, path);
	if (listen(server->listen_fd, API_SERVER_CONNECTIONS))
		return api_fail(err, errlen, "--api-sock %s: listen: %s", path, strerror(errno));
	return 0;
}

static void api_server_unlink(struct api_server *server)
{
	struct stat st;

	if (server->path[0] && !stat(server->path, &st) && st.st_dev == server->dev &&
	    st.st_ino == server->ino)
		unlink(server->path);
	server->path[0] = '\0';
}

/*
 * The API thread: filter first, then libmicrohttpd's own poll thread,
 * which it creates and so passes its filter on to (a seccomp filter binds
 * the calling thread and the threads it creates later).  Then it waits to
 * be told to stop, and stops MHD under the same filter.
 */
static void *api_server_thread(void *arg)
{
	struct api_server *server = arg;
	int ret;

	pthread_setname_np(pthread_self(), "api");
	ret = core_seccomp_enter(CORE_THREAD_API, 0);
	if (!ret) {
		/* poll, not epoll: under load, MHD 0.9.75's epoll mode could stop
		 * accepting for good after more idle clients than its connection
		 * limit (tests/system/api_client.py "idle flood", 1 run in 6 with
		 * three suites in parallel; 0 in 9 with poll) */
		server->daemon = MHD_start_daemon(
		    MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
		    api_server_access, server, MHD_OPTION_LISTEN_SOCKET, server->listen_fd,
		    MHD_OPTION_CONNECTION_LIMIT, (unsigned)API_SERVER_CONNECTIONS,
		    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)API_SERVER_TIMEOUT_S,
		    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)API_SERVER_CONNECTION_MEMORY,
		    MHD_OPTION_NOTIFY_COMPLETED, api_server_completed, NULL,
		    MHD_OPTION_UNESCAPE_CALLBACK, api_server_unescape, NULL,
		    MHD_OPTION_EXTERNAL_LOGGER, api_server_log, NULL, MHD_OPTION_END);
		if (!server->daemon)
			ret = -EIO;
	}
	server->start_ret = ret;
	sem_post(&server->started);
	if (ret)
		return NULL;
	for (;;) {
		struct pollfd stop = {.fd = server->stop_fd, .events = POLLIN};

		if (poll(&stop, 1, -1) > 0 || errno != EINTR)
			break;
	}
	/* MHD closes its connections and the listening socket, joins its thread. */
	MHD_stop_daemon(server->daemon);
	server->daemon = NULL;
	return NULL;
}

int api_server_start(struct api_server **out, const char *socket_path, size_t max_body,
		     const struct vm_config *initial, const struct api_vmm_ops *ops, void *vmm,
		     char *err, size_t errlen)
{
	struct api_server *server = calloc(1, sizeof(*server));
	int ret;

	*out = NULL;
	if (!server)
		return api_fail(err, errlen, "out of memory");
	server->listen_fd = -1;
	server->max_body = max_body ? max_body : API_MAX_BODY;
	sem_init(&server->started, 0, 0);
	server->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (server->stop_fd < 0) {
		free(server);
		return api_fail(err, errlen, "eventfd: %s", strerror(errno));
	}
	ret = api_create(&server->api, initial, ops, vmm, 0, err, errlen);
	if (!ret)
		ret = api_server_bind(server, socket_path, err, errlen);
	if (!ret) {
		ret = -pthread_create(&server->thread, NULL, api_server_thread, server);
		if (ret) {
			api_fail(err, errlen, "--api-sock %s: cannot start the API thread: %s",
				 socket_path, strerror(-ret));
		} else {
			while (sem_wait(&server->started) && errno == EINTR)
				;
			if (server->start_ret) {
				ret = server->start_ret;
				pthread_join(server->thread, NULL);
				if (ret == -EIO)
					api_fail(err, errlen,
						 "--api-sock %s: the HTTP server did not start",
						 socket_path);
				else
					api_fail(err, errlen,
						 "--api-sock %s: the API thread cannot install its "
						 "seccomp filter: %s",
						 socket_path, strerror(-ret));
			}
		}
	}
	if (ret) {
		/* MHD never started: the listening socket is still ours. */
		if (server->listen_fd >= 0)
			close(server->listen_fd);
		close(server->stop_fd);
		sem_destroy(&server->started);
		api_server_unlink(server);
		api_destroy(server->api);
		free(server);
		return ret;
	}
	server->thread_started = true;
	*out = server;
	return 0;
}

struct api *api_server_api(struct api_server *server)
{
	return server->api;
}

void api_server_stop(struct api_server *server)
{
	if (!server)
		return;
	uint64_t one = 1;

	/* The API thread stops MHD (which closes the listening socket). */
	if (write(server->stop_fd, &one, sizeof(one)) < 0) {
		/* an eventfd write cannot fail here */
	}
	if (server->thread_started)
		pthread_join(server->thread, NULL);
	close(server->stop_fd);
	sem_destroy(&server->started);
	api_server_unlink(server);
	api_destroy(server->api);
	free(server);
}
