// SPDX-License-Identifier: MIT
/*
 * lib/server_main.c's option parsing, the part every device server shares:
 * the common options, a device's own table reaching its hooks, the errors
 * (each names what is wrong) and --help built from the tables.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/server_main.h"

/* A device with one option of each kind. */
struct test_device {
	const char *level;
	unsigned level_calls;
	bool flag;
	const char *flag_value; /* what the hook got: NULL for a flag */
};

static int parse_level(void *device, const struct server_option *option, const char *value)
{
	struct test_device *d = device;

	d->level_calls++;
	if (!strcmp(value, "bad")) {
		log_error("%s %s: not a level", option->name, value);
		return -EINVAL;
	}
	d->level = value;
	return 0;
}

static int parse_flag(void *device, const struct server_option *option, const char *value)
{
	struct test_device *d = device;

	(void)option;
	d->flag = true;
	d->flag_value = value;
	return 0;
}

static const struct server_option test_options[] = {
    {"--level", "N", false, "how loud\nsecond line", parse_level},
    {"--flag", NULL, false, "a switch", parse_flag},
    {0},
};

static const struct server_def test_def = {
    .name = "isola-test",
    .description = "A device for the unit test.\n",
    .options = test_options,
};

static const struct server_option required_options[] = {
    {"--level", "N", true, "how loud", parse_level},
    {0},
};

static const struct server_def required_def = {
    .name = "isola-test",
    .options = required_options,
};

static char log_path[] = "/tmp/test_server_main.XXXXXX";

/* log lines go to a file (and errors to stderr too) so a test can read them */
static int setup(void **state)
{
	int fd = mkstemp(log_path);

	(void)state;
	if (fd < 0)
		return -1;
	close(fd);
	log_set_program("isola-test");
	return log_set_sink(log_path, false, false);
}

static int teardown(void **state)
{
	(void)state;
	log_set_sink(NULL, false, false);
	unlink(log_path);
	return 0;
}

/* Parse the NULL-terminated words after the program name with def; the
 * log written meanwhile goes to logged. */
static char logged[4096];

static int parse(const struct server_def *def, struct test_device *d, struct server_args *args, ...)
{
	char *argv[16] = {"isola-test"};
	int argc = 1, ret;
	va_list ap;
	FILE *f;
	size_t n;

	va_start(ap, args);
	while ((argv[argc] = va_arg(ap, char *)) != NULL)
		argc++;
	va_end(ap);
	assert_int_equal(truncate(log_path, 0), 0);
	*d = (struct test_device){0};
	ret = server_parse_args(argc, argv, def, d, args);
	f = fopen(log_path, "r");
	assert_non_null(f);
	n = fread(logged, 1, sizeof(logged) - 1, f);
	logged[n] = '\0';
	fclose(f);
	return ret;
}

#define assert_logged(text)                                                                        \
	do {                                                                                       \
		if (!strstr(logged, text))                                                         \
			fail_msg("log has no \"%s\": \"%s\"", text, logged);                       \
	} while (0)

static void test_common_options(void **state)
{
	struct server_args a;
	struct test_device d;

	(void)state;
	assert_int_equal(parse(&test_def, &d, &a, "--socket-fd", "3", NULL), 0);
	assert_int_equal(a.socket_fd, 3);
	assert_null(a.socket_path);
	assert_true(a.sandbox);
	assert_false(a.test_forbidden_syscall);
	assert_false(a.user_given);

	assert_int_equal(parse(&test_def, &d, &a, "--socket", "/run/s.sock", "--no-sandbox",
			       "--test-forbidden-syscall", "--user", "1000:100", NULL),
			 0);
	assert_string_equal(a.socket_path, "/run/s.sock");
	assert_int_equal(a.socket_fd, -1);
	assert_false(a.sandbox);
	assert_true(a.test_forbidden_syscall);
	assert_true(a.user_given);
	assert_int_equal(a.uid, 1000);
	assert_int_equal(a.gid, 100);
	assert_string_equal(logged, "");
}

static void test_device_option_reaches_hook(void **state)
{
	struct server_args a;
	struct test_device d;

	(void)state;
	assert_int_equal(
	    parse(&test_def, &d, &a, "--level", "7", "--socket-fd", "3", "--flag", NULL), 0);
	assert_int_equal(d.level_calls, 1);
	assert_string_equal(d.level, "7");
	assert_true(d.flag);
	assert_null(d.flag_value);
	/* the --opt=value spelling, as getopt_long always took */
	assert_int_equal(parse(&test_def, &d, &a, "--socket-fd", "3", "--level=9", NULL), 0);
	assert_string_equal(d.level, "9");
	assert_false(d.flag);

	/* the hook's refusal is the parse's, with the hook's message */
	assert_int_equal(parse(&test_def, &d, &a, "--socket-fd", "3", "--level", "bad", NULL),
			 -EINVAL);
	assert_logged("--level bad: not a level");
}

static void test_unknown_option_named(void **state)
{
	struct server_args a;
	struct test_device d;

	(void)state;
	assert_int_equal(parse(&test_def, &d, &a, "--socket-fd", "3", "--bogus", NULL), -EINVAL);
	assert_logged("unknown option '--bogus'");
	assert_int_equal(parse(&test_def, &d, &a, "-x", "--socket-fd", "3", NULL), -EINVAL);
	assert_logged("unknown option '-x'");
	/* another server's option is unknown here */
	assert_int_equal(parse(&test_def, &d, &a, "--socket-fd", "3", "--rate", "5", NULL),
			 -EINVAL);
	assert_logged("unknown option '--rate'");
	assert_int_equal(parse(&test_def, &d, &a, "--socket-fd", "3", "stray", NULL), -EINVAL);
	assert_logged("unexpected argument 'stray'");
}

static void test_missing_value(void **state)
{
	struct server_args a;
	struct test_device d;

	(void)state;
	assert_int_equal(parse(&test_def, &d, &a, "--socket-fd", "3", "--level", NULL), -EINVAL);
	assert_logged("--level needs a value");
	assert_int_equal(d.level_calls, 0);
	assert_int_equal(parse(&test_def, &d, &a, "--socket", NULL), -EINVAL);
	assert_logged("--socket needs a value");
	/* a switch given a value: named as such, not as an unknown "-\x01" */
	assert_int_equal(parse(&test_def, &d, &a, "--socket-fd", "3", "--flag=1", NULL), -EINVAL);
	assert_logged("--flag=1 takes no value");
}

static void test_socket_exactly_one(void **state)
{
	struct server_args a;
	struct test_device d;

	(void)state;
	assert_int_equal(parse(&test_def, &d, &a, "--socket", "s", "--socket-fd", "3", NULL),
			 -EINVAL);
	assert_logged("give exactly one of --socket PATH or --socket-fd N");
	assert_int_equal(parse(&test_def, &d, &a, "--flag", NULL), -EINVAL);
	assert_logged("give exactly one of --socket PATH or --socket-fd N");
	assert_int_equal(parse(&test_def, &d, &a, "--socket-fd", "x3", NULL), -EINVAL);
	assert_logged("--socket-fd x3: not a file descriptor number");
	assert_int_equal(parse(&test_def, &d, &a, "--socket-fd", "", NULL), -EINVAL);
	assert_logged("--socket-fd : not a file descriptor number");
}

static void test_user_refusals(void **state)
{
	struct server_args a;
	struct test_device d;

	(void)state;
	/* the spawner appends its own --user: a second is refused */
	assert_int_equal(
	    parse(&test_def, &d, &a, "--socket-fd", "3", "--user", "1", "--user", "2", NULL),
	    -EINVAL);
	assert_logged("--user given twice");
	assert_int_equal(parse(&test_def, &d, &a, "--socket-fd", "3", "--user", "nobody", NULL),
			 -EINVAL);
	assert_logged("--user nobody: expected UID or UID:GID (numbers)");
}

static void test_required_option(void **state)
{
	struct server_args a;
	struct test_device d;

	(void)state;
	assert_int_equal(parse(&required_def, &d, &a, "--socket-fd", "3", NULL), -EINVAL);
	assert_logged("--level N is required");
	assert_int_equal(parse(&required_def, &d, &a, "--socket-fd", "3", "--level", "1", NULL), 0);
}

static void test_help_lists_device_options(void **state)
{
	struct server_args a;
	struct test_device d;
	char *text = NULL;
	size_t len = 0;
	FILE *out;

	(void)state;
	/* --help wins over a missing socket, and -h is the same */
	assert_int_equal(parse(&test_def, &d, &a, "--help", NULL), 1);
	assert_int_equal(parse(&test_def, &d, &a, "-h", NULL), 1);

	out = open_memstream(&text, &len);
	assert_non_null(out);
	server_usage(&test_def, out);
	fclose(out);
	assert_non_null(strstr(text, "usage: isola-test (--socket PATH | --socket-fd N) [--level N]"
				     " [--flag]"));
	assert_non_null(strstr(text, "\nA device for the unit test.\n"));
	/* the device's options, help in the column, between the socket's and --user */
	assert_non_null(strstr(text, "\n  --level N                 how loud\n"
				     "                            second line\n"
				     "  --flag                    a switch\n"
				     "  --user UID[:GID]"));
	assert_non_null(strstr(text, "\n  --socket-fd N             use inherited fd N"));
	assert_non_null(strstr(text, "\n  --no-sandbox  "));
	assert_non_null(strstr(text, "\n  --test-forbidden-syscall  "));
	assert_non_null(strstr(text, "\n  --help  "));
	free(text);

	out = open_memstream(&text, &len);
	assert_non_null(out);
	server_usage(&required_def, out);
	fclose(out);
	/* a required option is not in brackets */
	assert_non_null(strstr(text, "(--socket PATH | --socket-fd N) --level N [--user"));
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_common_options),
	    cmocka_unit_test(test_device_option_reaches_hook),
	    cmocka_unit_test(test_unknown_option_named),
	    cmocka_unit_test(test_missing_value),
	    cmocka_unit_test(test_socket_exactly_one),
	    cmocka_unit_test(test_user_refusals),
	    cmocka_unit_test(test_required_option),
	    cmocka_unit_test(test_help_lists_device_options),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
