// SPDX-License-Identifier: MIT
#include "core/console.h"

#include <errno.h>
#include <signal.h>
#include <termios.h>
#include <unistd.h>

static struct termios console_saved;
static volatile sig_atomic_t console_saved_fd = -1;

/* A crash must not leave the user's terminal raw: restore it, then die of
 * the same signal (SA_RESETHAND re-arms the default action). */
static void console_fatal_signal(int sig)
{
	console_restore();
	raise(sig);
}

static void console_catch_fatal_signals(void)
{
	static const int fatal[] = {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL};
	struct sigaction sa = {.sa_handler = console_fatal_signal, .sa_flags = SA_RESETHAND};

	sigemptyset(&sa.sa_mask);
	for (unsigned i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++)
		sigaction(fatal[i], &sa, NULL);
}

int console_enter_raw(int fd)
{
	struct termios raw;

	if (!isatty(fd))
		return 0;
	if (tcgetattr(fd, &console_saved) < 0)
		return -errno;
	raw = console_saved;
	cfmakeraw(&raw);
	/* Keep output post-processing so the VMM's own "\n" lines stay tidy;
	 * the guest's bytes go to stdout unchanged either way. */
	raw.c_oflag |= OPOST | ONLCR;
	if (tcsetattr(fd, TCSANOW, &raw) < 0)
		return -errno;
	console_saved_fd = fd;
	console_catch_fatal_signals();
	return 1;
}

void console_restore(void)
{
	int fd = console_saved_fd;

	if (fd < 0)
		return;
	tcsetattr(fd, TCSANOW, &console_saved);
	console_saved_fd = -1;
}

size_t console_filter_escape(struct console_input *in, uint8_t *buf, size_t len, bool *quit)
{
	size_t out = 0;

	*quit = false;
	for (size_t i = 0; i < len; i++) {
		uint8_t c = buf[i];

		if (in->escape_pending) {
			in->escape_pending = false;
			if (c == 'x' || c == 'X') {
				*quit = true;
				return out;
			}
			if (c == CONSOLE_ESCAPE)
				buf[out++] = c;
			/* Any other key after Ctrl-A is dropped, as in QEMU. */
			continue;
		}
		if (c == CONSOLE_ESCAPE) {
			in->escape_pending = true;
			continue;
		}
		buf[out++] = c;
	}
	return out;
}
