// SPDX-License-Identifier: MIT
/* Unit tests for a restore's overrides (docs/snapshot.md "Clones"):
 * config_add_override's checks (empty, too long, twice, too many) and
 * snapshot_devices_override, which points the one argument of a saved
 * device's server an override replaces (isola-blk's --image, isola-net's
 * --tap, isola-vsock's --uds) at the new value: a drive named by its id
 * (the drive_id's first 20 bytes) or its name, an interface by its name;
 * no other argument changes; another kind's override is left alone; two
 * overrides of one device, and an external back-end, are refused. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/config.h"
#include "core/snapshot_devices.h"

static struct vm_config cfg;
static char err[512];

static int add(enum config_override_kind kind, const char *id, const char *value)
{
	return config_add_override(&cfg, kind, id, value, "--x-override", err, sizeof(err));
}

static void test_config_add_override(void **state)
{
	char long_id[80], long_tap[20];

	(void)state;
	config_defaults(&cfg);
	assert_int_equal(add(CONFIG_OVERRIDE_DRIVE, "disk0", "/c1.img"), 0);
	assert_int_equal(add(CONFIG_OVERRIDE_NET, "net0", "tap-c1"), 0);
	assert_int_equal(add(CONFIG_OVERRIDE_VSOCK, "", "/run/c1.sock"), 0);
	assert_int_equal(cfg.nr_overrides, 3);
	assert_string_equal(cfg.overrides[0].value, "/c1.img");
	assert_int_equal(cfg.overrides[1].kind, CONFIG_OVERRIDE_NET);

	assert_int_equal(add(CONFIG_OVERRIDE_DRIVE, "disk0", "/other.img"), -EINVAL);
	assert_non_null(strstr(err, "--x-override: \"disk0\" is overridden twice"));
	assert_int_equal(add(CONFIG_OVERRIDE_VSOCK, "", "/run/c2.sock"), -EINVAL);
	assert_non_null(strstr(err, "the vsock device is overridden twice"));
	assert_int_equal(add(CONFIG_OVERRIDE_DRIVE, "", "/x.img"), -EINVAL);
	assert_non_null(strstr(err, "id must be 1 to 64 bytes"));
	memset(long_id, 'a', sizeof(long_id) - 1);
	long_id[sizeof(long_id) - 1] = '\0';
	assert_int_equal(add(CONFIG_OVERRIDE_DRIVE, long_id, "/x.img"), -EINVAL);
	assert_int_equal(add(CONFIG_OVERRIDE_DRIVE, "disk1", ""), -EINVAL);
	assert_non_null(strstr(err, "new image path must be 1 to 4095 bytes"));
	memset(long_tap, 't', sizeof(long_tap) - 1);
	long_tap[sizeof(long_tap) - 1] = '\0';
	assert_int_equal(add(CONFIG_OVERRIDE_NET, "net1", long_tap), -EINVAL); /* IFNAMSIZ */
	assert_non_null(strstr(err, "tap's name must be 1 to 15 bytes"));
	assert_int_equal(cfg.nr_overrides, 3);

	for (unsigned i = 3; i < CONFIG_MAX_OVERRIDES; i++) {
		char id[16];

		snprintf(id, sizeof(id), "disk%u", i);
		assert_int_equal(add(CONFIG_OVERRIDE_DRIVE, id, "/x.img"), 0);
	}
	assert_int_equal(add(CONFIG_OVERRIDE_DRIVE, "one-more", "/x.img"), -E2BIG);
}

/* isola-blk's arguments as device_set.c makes them for a drive. */
static void blk_args(const char **argv, const char *image, const char *id)
{
	argv[0] = "--image";
	argv[1] = image;
	argv[2] = "--id";
	argv[3] = id;
	argv[4] = "--readonly";
	argv[5] = NULL;
}

static void test_override_drive(void **state)
{
	const char *argv[8];
	bool used[CONFIG_MAX_OVERRIDES] = {false};

	(void)state;
	config_defaults(&cfg);
	assert_int_equal(add(CONFIG_OVERRIDE_NET, "disk0", "tap9"), 0); /* another kind */
	assert_int_equal(add(CONFIG_OVERRIDE_DRIVE, "rootfs", "/clone/root.img"), 0);
	/* by its id; another drive's override leaves it alone */
	blk_args(argv, "/snap/root.img", "rootfs");
	assert_int_equal(snapshot_devices_override("blk", "disk0", false, argv, cfg.overrides,
						   cfg.nr_overrides, used, err, sizeof(err)),
			 0);
	assert_string_equal(argv[1], "/clone/root.img");
	assert_string_equal(argv[3], "rootfs");
	assert_string_equal(argv[4], "--readonly");
	assert_null(argv[5]);
	assert_false(used[0]);
	assert_true(used[1]);
	blk_args(argv, "/snap/data.img", "data");
	assert_int_equal(snapshot_devices_override("blk", "disk1", false, argv, cfg.overrides,
						   cfg.nr_overrides, used, err, sizeof(err)),
			 0);
	assert_string_equal(argv[1], "/snap/data.img");

	/* by its name ("diskN"), and by a drive_id longer than the 20
	 * bytes of its --id (the virtio-blk serial) */
	config_defaults(&cfg);
	memset(used, 0, sizeof(used));
	assert_int_equal(add(CONFIG_OVERRIDE_DRIVE, "disk1", "/clone/d1.img"), 0);
	assert_int_equal(
	    add(CONFIG_OVERRIDE_DRIVE, "a-drive-id-of-32-bytes-0123456", "/clone/long.img"), 0);
	blk_args(argv, "/snap/d1.img", "disk1");
	assert_int_equal(snapshot_devices_override("blk", "disk1", false, argv, cfg.overrides,
						   cfg.nr_overrides, used, err, sizeof(err)),
			 0);
	assert_string_equal(argv[1], "/clone/d1.img");
	blk_args(argv, "/snap/long.img", "a-drive-id-of-32-byt");
	assert_int_equal(snapshot_devices_override("blk", "disk2", false, argv, cfg.overrides,
						   cfg.nr_overrides, used, err, sizeof(err)),
			 0);
	assert_string_equal(argv[1], "/clone/long.img");

	/* two overrides of one drive (by id and by name) */
	config_defaults(&cfg);
	memset(used, 0, sizeof(used));
	assert_int_equal(add(CONFIG_OVERRIDE_DRIVE, "rootfs", "/a.img"), 0);
	assert_int_equal(add(CONFIG_OVERRIDE_DRIVE, "disk0", "/b.img"), 0);
	blk_args(argv, "/snap/root.img", "rootfs");
	assert_int_equal(snapshot_devices_override("blk", "disk0", false, argv, cfg.overrides,
						   cfg.nr_overrides, used, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "name each device once"));

	/* an external back-end: its socket is the snapshot's */
	memset(used, 0, sizeof(used));
	argv[0] = NULL;
	assert_int_equal(snapshot_devices_override("blk", "disk0", true, argv, cfg.overrides + 1, 1,
						   used, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "external back-end"));
}

static void test_override_net_vsock(void **state)
{
	const char *net[] = {"--tap", "tap0", "--queues", "1", "--mac", "02:00:00:00:00:01", NULL};
	const char *vsock[] = {"--cid", "3", "--uds", "/snap/v.sock", NULL};
	const char *rng[] = {NULL};
	bool used[CONFIG_MAX_OVERRIDES] = {false};

	(void)state;
	config_defaults(&cfg);
	assert_int_equal(add(CONFIG_OVERRIDE_NET, "net1", "tap-c1"), 0);
	assert_int_equal(add(CONFIG_OVERRIDE_VSOCK, "", "/c1/v.sock"), 0);
	/* net0 is not named; net1 is, and only its --tap changes */
	assert_int_equal(snapshot_devices_override("net", "net0", false, net, cfg.overrides,
						   cfg.nr_overrides, used, err, sizeof(err)),
			 0);
	assert_string_equal(net[1], "tap0");
	assert_int_equal(snapshot_devices_override("net", "net1", false, net, cfg.overrides,
						   cfg.nr_overrides, used, err, sizeof(err)),
			 0);
	assert_string_equal(net[1], "tap-c1");
	assert_string_equal(net[5], "02:00:00:00:00:01");
	assert_true(used[0]);
	assert_false(used[1]);
	/* a device of a kind no override replaces anything of */
	assert_int_equal(snapshot_devices_override("rng", "rng0", false, rng, cfg.overrides,
						   cfg.nr_overrides, used, err, sizeof(err)),
			 0);
	assert_false(used[1]);
	assert_int_equal(snapshot_devices_override("vsock", "vsock0", false, vsock, cfg.overrides,
						   cfg.nr_overrides, used, err, sizeof(err)),
			 0);
	assert_string_equal(vsock[3], "/c1/v.sock");
	assert_string_equal(vsock[1], "3");
	assert_true(used[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_config_add_override),
	    cmocka_unit_test(test_override_drive),
	    cmocka_unit_test(test_override_net_vsock),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
