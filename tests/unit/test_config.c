// SPDX-License-Identifier: MIT
/* Unit tests for core/config.c: `isola run` flags, sizes, defaults, errors. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arch/x86/layout.h"
#include "core/config.h"
#include "devices/virtio_pci.h"

#define KIB (1ull << 10)
#define MIB (1ull << 20)
#define GIB (1ull << 30)
#define TIB (1ull << 40)
#define MAX_ARGS 32

struct parse {
	struct vm_config cfg;
	char err[512];
	char *argv[MAX_ARGS];
	int argc;
};

/* args ends with NULL; argv[0] is "run" as the subcommand dispatcher passes. */
static int parse_args(struct parse *p, const char *const *args)
{
	p->argc = 0;
	p->argv[p->argc++] = (char *)"run";
	for (; *args; args++) {
		assert_true(p->argc < MAX_ARGS - 1);
		p->argv[p->argc++] = (char *)*args; /* getopt permutes argv, not the strings */
	}
	p->argv[p->argc] = NULL;
	memset(p->err, 0, sizeof(p->err));
	config_defaults(&p->cfg);
	return config_parse_run_args(&p->cfg, p->argc, p->argv, p->err, sizeof(p->err));
}

#define PARSE(p, ...) parse_args((p), (const char *const[]){__VA_ARGS__, NULL})

/* Parsing failed with -EINVAL and a message that names `needle`. */
static void expect_error(struct parse *p, int ret, const char *needle)
{
	assert_int_equal(ret, -EINVAL);
	assert_true(p->err[0] != '\0');
	assert_null(strchr(p->err, '\n')); /* one line; the caller adds context */
	if (!strstr(p->err, needle))
		fail_msg("error '%s' does not mention '%s'", p->err, needle);
}

static uint64_t host_ram(void)
{
	long pages = sysconf(_SC_PHYS_PAGES);
	long page_size = sysconf(_SC_PAGESIZE);

	return pages > 0 && page_size > 0 ? (uint64_t)pages * (uint64_t)page_size : 0;
}

static void test_defaults(void **state)
{
	struct vm_config cfg;

	(void)state;
	memset(&cfg, 0xa5, sizeof(cfg));
	config_defaults(&cfg);
	assert_null(cfg.kernel_path);
	assert_null(cfg.initrd_path);
	assert_null(cfg.cmdline);
	assert_int_equal(cfg.memory_bytes, 256 * MIB);
	assert_int_equal(cfg.nr_cpus, 1);
	assert_int_equal(cfg.console, CONSOLE_STDIO);
	assert_null(cfg.console_path);
	assert_int_equal(cfg.timeout_seconds, 0);
}

static void test_kernel_only_keeps_defaults(void **state)
{
	struct parse p;

	(void)state;
	assert_int_equal(PARSE(&p, "--kernel", "vmlinuz"), 0);
	assert_string_equal(p.cfg.kernel_path, "vmlinuz");
	assert_null(p.cfg.initrd_path);
	assert_null(p.cfg.cmdline);
	assert_int_equal(p.cfg.memory_bytes, CONFIG_DEFAULT_MEMORY);
	assert_int_equal(p.cfg.nr_cpus, CONFIG_DEFAULT_CPUS);
	assert_int_equal(p.cfg.console, CONSOLE_STDIO);
	assert_int_equal(p.cfg.timeout_seconds, 0);
}

static void test_every_long_flag(void **state)
{
	struct parse p;

	(void)state;
	assert_int_equal(PARSE(&p, "--kernel", "bzImage", "--initrd", "initrd.img", "--cmdline",
			       "console=ttyS0 quiet", "--memory", "512M", "--cpus", "4",
			       "--console", "file:/tmp/console.log", "--timeout", "30"),
			 0);
	assert_string_equal(p.cfg.kernel_path, "bzImage");
	assert_string_equal(p.cfg.initrd_path, "initrd.img");
	assert_string_equal(p.cfg.cmdline, "console=ttyS0 quiet");
	assert_int_equal(p.cfg.memory_bytes, 512 * MIB);
	assert_int_equal(p.cfg.nr_cpus, 4);
	assert_int_equal(p.cfg.console, CONSOLE_FILE);
	assert_string_equal(p.cfg.console_path, "/tmp/console.log");
	assert_int_equal(p.cfg.timeout_seconds, 30);
}

static void test_every_short_flag(void **state)
{
	struct parse p;

	(void)state;
	assert_int_equal(
	    PARSE(&p, "-k", "k.elf", "-i", "rd", "-c", "ro", "-m", "1G", "-n", "2", "-t", "7"), 0);
	assert_string_equal(p.cfg.kernel_path, "k.elf");
	assert_string_equal(p.cfg.initrd_path, "rd");
	assert_string_equal(p.cfg.cmdline, "ro");
	assert_int_equal(p.cfg.memory_bytes, GIB);
	assert_int_equal(p.cfg.nr_cpus, 2);
	assert_int_equal(p.cfg.timeout_seconds, 7);
}

static void test_equals_form_and_order(void **state)
{
	struct parse p;

	(void)state;
	assert_int_equal(
	    PARSE(&p, "--memory=64M", "--cpus=3", "--kernel=vmlinux", "--console=none"), 0);
	assert_string_equal(p.cfg.kernel_path, "vmlinux");
	assert_int_equal(p.cfg.memory_bytes, 64 * MIB);
	assert_int_equal(p.cfg.nr_cpus, 3);
	assert_int_equal(p.cfg.console, CONSOLE_NONE);
	/* The last occurrence of a flag wins. */
	assert_int_equal(PARSE(&p, "-k", "a", "-k", "b", "-n", "2", "-n", "5"), 0);
	assert_string_equal(p.cfg.kernel_path, "b");
	assert_int_equal(p.cfg.nr_cpus, 5);
}

static void test_parse_twice(void **state)
{
	struct parse p;

	(void)state;
	/* getopt state is global; a second parse must start from scratch. */
	expect_error(&p, PARSE(&p, "--kernel", "k", "--bogus"), "--bogus");
	assert_int_equal(PARSE(&p, "--kernel", "k", "--cpus", "2"), 0);
	assert_int_equal(p.cfg.nr_cpus, 2);
	assert_int_equal(PARSE(&p, "--kernel", "k2"), 0);
	assert_string_equal(p.cfg.kernel_path, "k2");
}

static void expect_size(const char *text, uint64_t bytes)
{
	uint64_t got = 0xdeadbeef;

	if (config_parse_size(text, &got) != 0)
		fail_msg("config_parse_size(\"%s\") failed", text);
	if (got != bytes)
		fail_msg("config_parse_size(\"%s\") = %llu, want %llu", text,
			 (unsigned long long)got, (unsigned long long)bytes);
}

static void expect_size_error(const char *text, int err)
{
	uint64_t got = 0xdeadbeef;
	int ret = config_parse_size(text, &got);

	if (ret != err)
		fail_msg("config_parse_size(\"%s\") = %d, want %d", text ? text : "(null)", ret,
			 err);
	assert_int_equal(got, 0xdeadbeef); /* untouched on error */
}

static void test_parse_size_suffixes(void **state)
{
	(void)state;
	expect_size("512", 512 * MIB); /* a bare number is MiB */
	expect_size("512M", 512 * MIB);
	expect_size("512m", 512 * MIB);
	expect_size("512MB", 512 * MIB);
	expect_size("512MiB", 512 * MIB);
	expect_size("1G", GIB);
	expect_size("1g", GIB);
	expect_size("2GiB", 2 * GIB);
	expect_size("2GB", 2 * GIB);
	expect_size("4K", 4 * KIB);
	expect_size("4KiB", 4 * KIB);
	expect_size("1T", TIB);
	expect_size("1TiB", TIB);
	expect_size("0", 0);
	expect_size("16777215T", 16777215 * TIB);
}

static void test_parse_size_errors(void **state)
{
	(void)state;
	expect_size_error(NULL, -EINVAL);
	expect_size_error("", -EINVAL);
	expect_size_error("abc", -EINVAL);
	expect_size_error("-1", -EINVAL);
	expect_size_error("+1", -EINVAL);
	expect_size_error("M", -EINVAL);
	expect_size_error("12X", -EINVAL);
	expect_size_error("12 M", -EINVAL);
	expect_size_error("1Gi", -EINVAL);
	expect_size_error("1GiBx", -EINVAL);
	expect_size_error("1iB", -EINVAL);
	expect_size_error("1B", -EINVAL);
	expect_size_error("1MM", -EINVAL);
	expect_size_error("0x10", -EINVAL);
	expect_size_error("1.5G", -EINVAL);
	/* Too big for 64 bits, before or after the shift. */
	expect_size_error("16777216T", -ERANGE);
	expect_size_error("17179869184G", -ERANGE);
	expect_size_error("18446744073709551615", -ERANGE);
	expect_size_error("99999999999999999999999", -ERANGE);
}

static void test_memory_flag(void **state)
{
	struct parse p;
	uint64_t host = host_ram();
	char over[64];

	(void)state;
	assert_int_equal(PARSE(&p, "-k", "k", "--memory", "512"), 0);
	assert_int_equal(p.cfg.memory_bytes, 512 * MIB);
	assert_int_equal(PARSE(&p, "-k", "k", "--memory", "512M"), 0);
	assert_int_equal(p.cfg.memory_bytes, 512 * MIB);
	assert_int_equal(PARSE(&p, "-k", "k", "--memory", "2M"), 0); /* the minimum */
	assert_int_equal(p.cfg.memory_bytes, LAYOUT_MIN_MEMORY);
	if (host >= 2 * GIB) {
		assert_int_equal(PARSE(&p, "-k", "k", "--memory", "1G"), 0);
		assert_int_equal(p.cfg.memory_bytes, GIB);
		assert_int_equal(PARSE(&p, "-k", "k", "--memory", "2GiB"), 0);
		assert_int_equal(p.cfg.memory_bytes, 2 * GIB);
	}

	expect_error(&p, PARSE(&p, "-k", "k", "--memory", "abc"), "'abc'");
	expect_error(&p, PARSE(&p, "-k", "k", "--memory", "-1"), "'-1'");
	expect_error(&p, PARSE(&p, "-k", "k", "--memory", ""), "--memory");
	expect_error(&p, PARSE(&p, "-k", "k", "--memory", "1K"), "too small");
	expect_error(&p, PARSE(&p, "-k", "k", "--memory", "0"), "too small");
	expect_error(&p, PARSE(&p, "-k", "k", "--memory", "2049K"), "4 KiB");
	expect_error(&p, PARSE(&p, "-k", "k", "--memory", "99999999999999999999"), "not a size");

	/* More than the host has: 1T here, or one GiB past the host's RAM. */
	assert_true(host > 0);
	if (host < TIB)
		expect_error(&p, PARSE(&p, "-k", "k", "--memory", "1T"), "host");
	snprintf(over, sizeof(over), "%lluM", (unsigned long long)((host >> 20) + 1024));
	expect_error(&p, PARSE(&p, "-k", "k", "--memory", over), "host");
}

static void test_huge_pages_flag(void **state)
{
	struct parse p;

	(void)state;
	assert_int_equal(PARSE(&p, "-k", "k"), 0);
	assert_int_equal(p.cfg.huge_pages, CONFIG_HUGE_PAGES_NONE); /* the default */
	assert_int_equal(PARSE(&p, "-k", "k", "--huge-pages", "2M"), 0);
	assert_int_equal(p.cfg.huge_pages, CONFIG_HUGE_PAGES_2M);
	assert_int_equal(PARSE(&p, "-k", "k", "--huge-pages=2m", "--memory", "64M"), 0);
	assert_int_equal(p.cfg.huge_pages, CONFIG_HUGE_PAGES_2M);
	assert_int_equal(p.cfg.memory_bytes, 64 * MIB);
	assert_int_equal(PARSE(&p, "-k", "k", "--huge-pages", "2M", "--huge-pages", "none"), 0);
	assert_int_equal(p.cfg.huge_pages, CONFIG_HUGE_PAGES_NONE);
	assert_int_equal(PARSE(&p, "-k", "k", "--huge-pages", "None"), 0);
	assert_int_equal(p.cfg.huge_pages, CONFIG_HUGE_PAGES_NONE);

	expect_error(&p, PARSE(&p, "-k", "k", "--huge-pages", "1G"), "--huge-pages '1G'");
	expect_error(&p, PARSE(&p, "-k", "k", "--huge-pages", "2"), "use none");
	expect_error(&p, PARSE(&p, "-k", "k", "--huge-pages", ""), "--huge-pages ''");
	/* whole 2 MiB pages only, whichever flag comes first */
	expect_error(&p, PARSE(&p, "-k", "k", "--memory", "63M", "--huge-pages", "2M"),
		     "not a multiple of 2 MiB");
	expect_error(&p, PARSE(&p, "-k", "k", "--huge-pages", "2M", "--memory", "4100K"),
		     "use e.g. --memory 6M");
	assert_int_equal(PARSE(&p, "-k", "k", "--memory", "63M", "--huge-pages", "none"), 0);
}

static void test_cpus_flag(void **state)
{
	struct parse p;

	(void)state;
	assert_int_equal(PARSE(&p, "-k", "k", "--cpus", "1"), 0);
	assert_int_equal(p.cfg.nr_cpus, 1);
	assert_int_equal(PARSE(&p, "-k", "k", "--cpus", "255"), 0);
	assert_int_equal(p.cfg.nr_cpus, CONFIG_MAX_CPUS);
	expect_error(&p, PARSE(&p, "-k", "k", "--cpus", "0"), "'0'");
	expect_error(&p, PARSE(&p, "-k", "k", "--cpus", "256"), "'256'");
	expect_error(&p, PARSE(&p, "-k", "k", "--cpus", "x"), "'x'");
	expect_error(&p, PARSE(&p, "-k", "k", "--cpus", "-1"), "'-1'");
	expect_error(&p, PARSE(&p, "-k", "k", "--cpus", "2x"), "'2x'");
	expect_error(&p, PARSE(&p, "-k", "k", "--cpus", ""), "--cpus");
	expect_error(&p, PARSE(&p, "-k", "k", "--cpus", "99999999999999999999999"), "--cpus");
	expect_error(&p, PARSE(&p, "-k", "k", "--cpus", "4294967297"), "--cpus");
}

static void test_timeout_flag(void **state)
{
	struct parse p;

	(void)state;
	assert_int_equal(PARSE(&p, "-k", "k", "--timeout", "1"), 0);
	assert_int_equal(p.cfg.timeout_seconds, 1);
	assert_int_equal(PARSE(&p, "-k", "k", "--timeout", "31536000"), 0); /* a year */
	assert_int_equal(p.cfg.timeout_seconds, 31536000);
	expect_error(&p, PARSE(&p, "-k", "k", "--timeout", "0"), "--timeout");
	expect_error(&p, PARSE(&p, "-k", "k", "--timeout", "31536001"), "--timeout");
	expect_error(&p, PARSE(&p, "-k", "k", "--timeout", "10s"), "'10s'");
	expect_error(&p, PARSE(&p, "-k", "k", "--timeout", "-5"), "'-5'");
	expect_error(&p, PARSE(&p, "-k", "k", "--timeout", "abc"), "'abc'");
}

static void test_console_flag(void **state)
{
	struct parse p;

	(void)state;
	assert_int_equal(PARSE(&p, "-k", "k", "--console", "none"), 0);
	assert_int_equal(p.cfg.console, CONSOLE_NONE);
	assert_int_equal(PARSE(&p, "-k", "k", "--console", "stdio"), 0);
	assert_int_equal(p.cfg.console, CONSOLE_STDIO);
	assert_int_equal(PARSE(&p, "-k", "k", "--console", "file:out.log"), 0);
	assert_int_equal(p.cfg.console, CONSOLE_FILE);
	assert_string_equal(p.cfg.console_path, "out.log");
	assert_int_equal(PARSE(&p, "-k", "k", "--console", "file:/a:b"), 0);
	assert_string_equal(p.cfg.console_path, "/a:b");
	expect_error(&p, PARSE(&p, "-k", "k", "--console", "file:"), "'file:'");
	expect_error(&p, PARSE(&p, "-k", "k", "--console", "bogus"), "'bogus'");
	expect_error(&p, PARSE(&p, "-k", "k", "--console", ""), "--console");
	expect_error(&p, PARSE(&p, "-k", "k", "--console", "STDIO"), "'STDIO'");
	expect_error(&p, PARSE(&p, "-k", "k", "--console", "file"), "'file'");
}

/* --net and --vhost-user-net (docs/net.md). */
static void test_net_flag(void **state)
{
	struct parse p;
	const struct net_config *n = &p.cfg.nets[0];

	(void)state;
	assert_int_equal(PARSE(&p, "-k", "k", "--net",
			       "tap=tap0,mac=02:00:00:00:00:07,queues=2,mtu=9000,offloads=off,"
			       "rx-bytes=1000:100,rx-ops=10:100:5,tx-bytes=2000:50,id=eth0"),
			 0);
	assert_int_equal(p.cfg.nr_nets, 1);
	assert_string_equal(n->tap, "tap0");
	assert_int_equal(n->mac[5], 7);
	assert_int_equal(n->queues, 2);
	assert_int_equal(n->mtu, 9000);
	assert_true(n->no_offloads);
	assert_string_equal(n->rx_rate, "bytes=1000:100,ops=10:100:5");
	assert_string_equal(n->tx_rate, "bytes=2000:50");
	assert_string_equal(n->iface_id, "eth0");

	/* defaults: one pair, MTU 1500, a locally administered unicast MAC */
	assert_int_equal(
	    PARSE(&p, "-k", "k", "--net", "tap=t1", "--vhost-user-net", "socket=/run/n.sock"), 0);
	assert_int_equal(p.cfg.nr_nets, 2);
	assert_int_equal(n->queues, 1);
	assert_int_equal(n->mtu, 1500);
	assert_int_equal(n->mac[0] & 3, 2);
	assert_string_equal(n->iface_id, "net0");
	assert_string_equal(p.cfg.nets[1].socket, "/run/n.sock");
	assert_string_equal(p.cfg.nets[1].iface_id, "net1");

	expect_error(&p, PARSE(&p, "-k", "k", "--net", "mac=02:00:00:00:00:01"), "tap=NAME");
	expect_error(&p, PARSE(&p, "-k", "k", "--net", "tap=t,mac=03:00:00:00:00:01"), "multicast");
	expect_error(&p, PARSE(&p, "-k", "k", "--net", "tap=t,mac=02:00:00:00:00"), "six hex");
	expect_error(&p, PARSE(&p, "-k", "k", "--net", "tap=t,queues=5"), "1 to 4");
	expect_error(&p, PARSE(&p, "-k", "k", "--net", "tap=t,queues=0"), "1 to 4");
	expect_error(&p, PARSE(&p, "-k", "k", "--net", "tap=t,mtu=67"), "68 to 65535");
	expect_error(&p, PARSE(&p, "-k", "k", "--net", "tap=0123456789abcdef"), "1 to 15");
	expect_error(&p, PARSE(&p, "-k", "k", "--net", "tap=t,offloads=maybe"), "on or off");
	expect_error(&p, PARSE(&p, "-k", "k", "--net", "tap=t,rx-bytes=100"), "rx rate limiter");
	expect_error(&p, PARSE(&p, "-k", "k", "--net", "tap=t,colour=red"), "unknown key");
	expect_error(&p, PARSE(&p, "-k", "k", "--vhost-user-net", "tap=t"), "unknown key");
	expect_error(&p, PARSE(&p, "-k", "k", "--net", "tap=a", "--net", "tap=a"), "twice");
	expect_error(&p, PARSE(&p, "-k", "k", "--net", "tap=a,id=x", "--net", "tap=b,id=x"),
		     "the id 'x'");
	expect_error(&p,
		     PARSE(&p, "-k", "k", "--net", "tap=a", "--net", "tap=b", "--net", "tap=c",
			   "--net", "tap=d", "--net", "tap=e"),
		     "too many network interfaces");
}

/* --disk ...,bytes=,ops= and --rng=bytes=,ops=: isola-blk's and isola-rng's
 * --rate, the same bucket syntax as --net's rx-bytes= */
static void test_rate_flags(void **state)
{
	struct parse p;

	(void)state;
	assert_int_equal(PARSE(&p, "-k", "k", "--disk",
			       "path=/d.img,ops=100:1000,bytes=4096:10:8192",
			       "--rng=restart=never,bytes=1000:100"),
			 0);
	assert_string_equal(p.cfg.disks[0].rate, "ops=100:1000,bytes=4096:10:8192");
	assert_string_equal(p.cfg.rng_rate, "bytes=1000:100");
	assert_true(p.cfg.rng_no_restart);
	assert_int_equal(PARSE(&p, "-k", "k", "--disk", "path=/d.img", "--rng"), 0);
	assert_string_equal(p.cfg.disks[0].rate, "");
	assert_string_equal(p.cfg.rng_rate, "");
	expect_error(&p, PARSE(&p, "-k", "k", "--disk", "path=/d.img,bytes=100"),
		     "--disk rate limiter");
	expect_error(&p, PARSE(&p, "-k", "k", "--disk", "path=/d.img,ops=1:1,ops=2:2"),
		     "given twice");
	expect_error(&p, PARSE(&p, "-k", "k", "--vhost-user-blk", "socket=/s,ops=1:1"),
		     "unknown key");
	expect_error(&p, PARSE(&p, "-k", "k", "--rng=ops=5"), "--rng rate limiter");
	expect_error(&p, PARSE(&p, "-k", "k", "--rng=speed=5"), "bytes=B and ops=B");
	expect_error(&p, PARSE(&p, "-k", "k", "--rng=restart=sometimes"), "restart=always|never");
}

/* --vsock cid=N,uds=PATH[,restart=..]: isola-vsock's --cid and --uds */
static void test_vsock_flag(void **state)
{
	char dir[] = "/tmp/isola-test-vsock-XXXXXX", uds[128], file[64], longp[128];
	struct parse p;
	int fd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(uds, sizeof(uds), "cid=3,uds=%s/v.sock", dir);
	snprintf(file, sizeof(file), "%s/file", dir);
	fd = open(file, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(PARSE(&p, "-k", "k"), 0);
	assert_false(p.cfg.vsock.enabled);
	assert_int_equal(PARSE(&p, "-k", "k", "--vsock", uds), 0);
	assert_true(p.cfg.vsock.enabled);
	assert_int_equal(p.cfg.vsock.guest_cid, 3);
	assert_false(p.cfg.vsock.no_restart);
	assert_int_equal(strcmp(p.cfg.vsock.uds_path + strlen(dir), "/v.sock"), 0);
	assert_int_equal(config_device_count(&p.cfg), 1);
	assert_int_equal(PARSE(&p, "-k", "k", "--vsock=uds=v.sock,cid=4294967294,restart=never"),
			 0);
	assert_int_equal(p.cfg.vsock.guest_cid, 4294967294u);
	assert_string_equal(p.cfg.vsock.uds_path, "v.sock"); /* relative: isola's cwd */
	assert_true(p.cfg.vsock.no_restart);

	expect_error(&p, PARSE(&p, "-k", "k", "--vsock", "cid=2,uds=v.sock"),
		     "--vsock cid: 2 is reserved");
	expect_error(&p, PARSE(&p, "-k", "k", "--vsock", "cid=4294967295,uds=v.sock"),
		     "--vsock cid: 4294967295 is out of range");
	expect_error(&p, PARSE(&p, "-k", "k", "--vsock", "cid=99999999999999999999,uds=v.sock"),
		     "is out of range");
	expect_error(&p, PARSE(&p, "-k", "k", "--vsock", "cid=-3,uds=v.sock"), "is not a number");
	expect_error(&p, PARSE(&p, "-k", "k", "--vsock", "cid=0x10,uds=v.sock"), "is not a number");
	expect_error(&p, PARSE(&p, "-k", "k", "--vsock", "uds=v.sock"), "--vsock needs cid=N");
	expect_error(&p, PARSE(&p, "-k", "k", "--vsock", "cid=3"), "and uds=PATH");
	expect_error(&p, PARSE(&p, "-k", "k", "--vsock", "cid=3,uds="), "must not be empty");
	expect_error(&p, PARSE(&p, "-k", "k", "--vsock", "cid=3,uds=/no/such/dir/v"),
		     "--vsock uds: directory /no/such/dir: No such file or directory; create it");
	expect_error(&p, PARSE(&p, "-k", "k", "--vsock", "cid=3,uds=/"), "names a directory");
	snprintf(longp, sizeof(longp), "cid=3,uds=/%096d", 0);
	expect_error(&p, PARSE(&p, "-k", "k", "--vsock", longp),
		     "--vsock uds: 97 bytes is too long");
	snprintf(longp, sizeof(longp), "cid=3,uds=%s", file);
	expect_error(&p, PARSE(&p, "-k", "k", "--vsock", longp),
		     "exists and is not a socket; isola-vsock creates the socket there");
	expect_error(&p, PARSE(&p, "-k", "k", "--vsock", "cid=3,uds=v,port=5"),
		     "unknown key 'port'; keys are cid, uds, restart");
	expect_error(&p, PARSE(&p, "-k", "k", "--vsock", "cid=3,uds=v,restart=maybe"),
		     "--vsock restart=maybe: use always or never");
	expect_error(&p, PARSE(&p, "-k", "k", "--vsock", "cid=3"), "--vsock needs");
	expect_error(&p, PARSE(&p, "-k", "k", "--vsock", "cid=3,uds=v", "--vsock", "cid=4,uds=w"),
		     "--vsock is given twice");
	expect_error(&p, PARSE(&p, "-k", "k", "--vsock"), "needs a value");
	unlink(file);
	rmdir(dir);
}

/* --fs tag=NAME,socket=PATH | tag=NAME,dir=HOSTDIR[,cache=][,sandbox=]
 * (docs/fs.md): the tag is virtio 1.2 §5.11.4's 36 bytes at most. */
static void test_fs_flag(void **state)
{
	char dir[] = "/tmp/isola-test-fs-XXXXXX", arg[256], file[96];
	char tag36[37], tag37[38];
	uint8_t config[VIRTIO_PCI_CONFIG_MAX];
	struct parse p;
	int fd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	memset(tag36, 'a', 36);
	tag36[36] = '\0';
	memset(tag37, 'b', 37);
	tag37[37] = '\0';
	assert_int_equal(PARSE(&p, "-k", "k"), 0);
	assert_int_equal(p.cfg.nr_fs, 0);
	/* an external back-end */
	assert_int_equal(PARSE(&p, "-k", "k", "--fs", "tag=share,socket=/run/vfs.sock"), 0);
	assert_int_equal(p.cfg.nr_fs, 1);
	assert_string_equal(p.cfg.fs[0].tag, "share");
	assert_string_equal(p.cfg.fs[0].socket, "/run/vfs.sock");
	assert_string_equal(p.cfg.fs[0].dir, "");
	/* a directory isola starts virtiofsd on: absolute, with the defaults */
	assert_int_equal(chdir(dir), 0);
	assert_int_equal(mkdir("sub", 0700), 0);
	assert_int_equal(PARSE(&p, "-k", "k", "--fs", "dir=sub,tag=x"), 0);
	snprintf(arg, sizeof(arg), "%s/sub", dir);
	assert_string_equal(p.cfg.fs[0].dir, arg);
	assert_string_equal(p.cfg.fs[0].cache, "auto");
	assert_string_equal(p.cfg.fs[0].sandbox, "namespace");
	assert_int_equal(chdir("/"), 0);
	/* repeatable; the modes; a 36-byte tag */
	snprintf(arg, sizeof(arg), "tag=%s,dir=%s,cache=none,sandbox=chroot", tag36, dir);
	assert_int_equal(PARSE(&p, "-k", "k", "--fs", "tag=a,socket=s", "--fs", arg), 0);
	assert_int_equal(p.cfg.nr_fs, 2);
	assert_string_equal(p.cfg.fs[1].tag, tag36);
	assert_string_equal(p.cfg.fs[1].cache, "none");
	assert_string_equal(p.cfg.fs[1].sandbox, "chroot");
	assert_false(p.cfg.fs[1].no_restart);
	assert_int_equal(config_device_count(&p.cfg), 2);
	/* the front-end's config (§5.11.4): the tag fills all 36 bytes, no
	 * NUL; then le32 num_request_queues = 1 */
	memset(config, 0xee, sizeof(config));
	config_fs_device_config(&p.cfg.fs[1], config, sizeof(config));
	assert_memory_equal(config, tag36, 36);
	assert_int_equal(config[36], 1);
	assert_int_equal(config[37] | config[38] | config[39], 0);
	config_fs_device_config(&p.cfg.fs[0], config, sizeof(config));
	assert_memory_equal(config, "a\0\0\0", 4); /* NUL-padded */
	for (unsigned i = 1; i < 36; i++)
		assert_int_equal(config[i], 0);
	assert_int_equal(config[36], 1);

	/* restart=never: a lost back-end gives the device up */
	assert_int_equal(PARSE(&p, "-k", "k", "--fs", "tag=a,socket=s,restart=never"), 0);
	assert_true(p.cfg.fs[0].no_restart);
	expect_error(&p, PARSE(&p, "-k", "k", "--fs", "tag=a,socket=s,restart=maybe"),
		     "--fs restart=maybe: use always (the default) or never");

	/* refusals, each saying what to do */
	snprintf(arg, sizeof(arg), "tag=%s,socket=s", tag37);
	expect_error(&p, PARSE(&p, "-k", "k", "--fs", arg), "a tag is 1 to 36 bytes");
	expect_error(&p, PARSE(&p, "-k", "k", "--fs", "tag=,socket=s"), "a tag is 1 to 36 bytes");
	expect_error(&p, PARSE(&p, "-k", "k", "--fs", "socket=s"), "--fs needs tag=NAME");
	expect_error(&p, PARSE(&p, "-k", "k", "--fs", "tag=t"), "exactly one of socket=PATH");
	snprintf(arg, sizeof(arg), "tag=t,socket=s,dir=%s", dir);
	expect_error(&p, PARSE(&p, "-k", "k", "--fs", arg), "exactly one of socket=PATH");
	expect_error(
	    &p, PARSE(&p, "-k", "k", "--fs", "tag=t,dir=/no/such/dir"),
	    "--fs dir=/no/such/dir: No such file or directory; give an existing directory");
	snprintf(file, sizeof(file), "%s/file", dir);
	fd = open(file, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	snprintf(arg, sizeof(arg), "tag=t,dir=%s", file);
	expect_error(&p, PARSE(&p, "-k", "k", "--fs", arg), "is not a directory");
	snprintf(arg, sizeof(arg), "tag=t,dir=%s,cache=sometimes", dir);
	expect_error(&p, PARSE(&p, "-k", "k", "--fs", arg), "--fs cache=sometimes: use auto");
	snprintf(arg, sizeof(arg), "tag=t,dir=%s,sandbox=none", dir);
	expect_error(&p, PARSE(&p, "-k", "k", "--fs", arg), "--fs sandbox=none: use namespace");
	expect_error(&p, PARSE(&p, "-k", "k", "--fs", "tag=t,socket=s,cache=none"),
		     "cache= and sandbox= are for the virtiofsd isola starts");
	expect_error(&p, PARSE(&p, "-k", "k", "--fs", "tag=t,socket=s,dax=on"),
		     "--fs: unknown key 'dax'");
	expect_error(&p, PARSE(&p, "-k", "k", "--fs", "tag=t,socket"), "is not KEY=VALUE");
	expect_error(&p, PARSE(&p, "-k", "k", "--fs", "tag=t,socket=s", "--fs", "tag=t,socket=u"),
		     "--fs tag=t is given twice");
	expect_error(&p, PARSE(&p, "-k", "k", "--fs"), "needs a value");
	unlink(file);
	snprintf(arg, sizeof(arg), "%s/sub", dir);
	rmdir(arg);
	rmdir(dir);
}

static void test_unknown_flag(void **state)
{
	struct parse p;

	(void)state;
	expect_error(&p, PARSE(&p, "--kernel", "k", "--bogus"), "'--bogus'");
	expect_error(&p, PARSE(&p, "--bogus", "--kernel", "k"), "'--bogus'");
	expect_error(&p, PARSE(&p, "-k", "k", "-z"), "'-z'");
	/* An unknown letter in a group of short flags is named by itself. */
	expect_error(&p, PARSE(&p, "-zk", "k"), "'-z'");
	expect_error(&p, PARSE(&p, "--kernel=k", "-Cx"), "'-C'");
	expect_error(&p, PARSE(&p, "-k", "k", "--help=yes"), "--help=yes");
}

static void test_missing_value(void **state)
{
	struct parse p;

	(void)state;
	expect_error(&p, PARSE(&p, "--kernel"), "--kernel");
	expect_error(&p, PARSE(&p, "-k", "k", "--memory"), "--memory");
	expect_error(&p, PARSE(&p, "-k", "k", "-m"), "-m");
	expect_error(&p, PARSE(&p, "-k", "k", "--console"), "--console");
	expect_error(&p, PARSE(&p, "-k", "k", "--timeout"), "needs a value");
}

static void test_stray_argument(void **state)
{
	struct parse p;

	(void)state;
	expect_error(&p, PARSE(&p, "--kernel", "k", "extra"), "'extra'");
	expect_error(&p, PARSE(&p, "vmlinuz", "--kernel", "k"), "'vmlinuz'");
	/* "--" ends the options; what follows is still a stray argument. */
	expect_error(&p, PARSE(&p, "--kernel", "k", "--", "--cpus"), "'--cpus'");
}

static void test_missing_kernel(void **state)
{
	struct parse p;

	(void)state;
	expect_error(&p, PARSE(&p, "--memory", "64M"), "--kernel");
	p.argc = 1;
	p.argv[0] = (char *)"run";
	p.argv[1] = NULL;
	config_defaults(&p.cfg);
	expect_error(&p, config_parse_run_args(&p.cfg, p.argc, p.argv, p.err, sizeof(p.err)),
		     "--kernel");
}

static void test_help(void **state)
{
	struct parse p;

	(void)state;
	/* --help prints to stdout and wins over everything else. */
	assert_int_equal(PARSE(&p, "--help"), 1);
	assert_int_equal(PARSE(&p, "-h"), 1);
	assert_int_equal(PARSE(&p, "--kernel", "k", "--help"), 1);
	fflush(stdout);
}

static void test_error_truncated_to_buffer(void **state)
{
	struct vm_config cfg;
	char err[16];
	char *argv[] = {(char *)"run", (char *)"--console", (char *)"a-very-long-bogus-console",
			NULL};

	(void)state;
	config_defaults(&cfg);
	memset(err, 'X', sizeof(err));
	assert_int_equal(config_parse_run_args(&cfg, 3, argv, err, sizeof(err)), -EINVAL);
	assert_int_equal(strlen(err), sizeof(err) - 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_kernel_only_keeps_defaults),
	    cmocka_unit_test(test_every_long_flag),
	    cmocka_unit_test(test_every_short_flag),
	    cmocka_unit_test(test_equals_form_and_order),
	    cmocka_unit_test(test_parse_twice),
	    cmocka_unit_test(test_parse_size_suffixes),
	    cmocka_unit_test(test_parse_size_errors),
	    cmocka_unit_test(test_memory_flag),
	    cmocka_unit_test(test_huge_pages_flag),
	    cmocka_unit_test(test_cpus_flag),
	    cmocka_unit_test(test_timeout_flag),
	    cmocka_unit_test(test_console_flag),
	    cmocka_unit_test(test_net_flag),
	    cmocka_unit_test(test_rate_flags),
	    cmocka_unit_test(test_vsock_flag),
	    cmocka_unit_test(test_fs_flag),
	    cmocka_unit_test(test_unknown_flag),
	    cmocka_unit_test(test_missing_value),
	    cmocka_unit_test(test_stray_argument),
	    cmocka_unit_test(test_missing_kernel),
	    cmocka_unit_test(test_help),
	    cmocka_unit_test(test_error_truncated_to_buffer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
