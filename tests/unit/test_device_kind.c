// SPDX-License-Identifier: MIT
/* The device-kind table (devices/device_kind.h): one row per device type,
 * consistent with itself and with the tree (servers/<name>/). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "devices/device_kind.h"
#include "isola/virtio.h"

static void test_rows_are_consistent(void **state)
{
	(void)state;
	assert_true(device_kinds_count >= 2);
	for (unsigned i = 0; i < device_kinds_count; i++) {
		const struct device_kind *k = &device_kinds[i];

		assert_non_null(k->name);
		assert_true(k->virtio_id != 0);
		assert_true(k->pci_class != 0);
		/* a config the back-end owns has a size to ask for; none has none */
		if (k->config_owner == DEVICE_CONFIG_NONE)
			assert_int_equal(k->config_size, 0);
		else
			assert_true(k->config_size > 0 && k->config_size <= 256);
		for (unsigned j = 0; j < i; j++) {
			assert_string_not_equal(device_kinds[j].name, k->name);
			assert_int_not_equal(device_kinds[j].virtio_id, k->virtio_id);
		}
		/* options: "--name", each at most once */
		for (unsigned o = 0; o < DEVICE_KIND_MAX_OPTIONS && k->options[o].name; o++) {
			assert_int_equal(strncmp(k->options[o].name, "--", 2), 0);
			assert_ptr_equal(device_kind_option(k, k->options[o].name), &k->options[o]);
		}
		/* what a restore override replaces is an option with a value */
		if (k->restore_override_option) {
			const struct device_kind_option *o =
			    device_kind_option(k, k->restore_override_option);

			assert_non_null(o);
			assert_true(o->has_value);
		}
	}
}

static void test_each_kind_has_a_server_folder(void **state)
{
	(void)state;
	for (unsigned i = 0; i < device_kinds_count; i++) {
		char path[256];

		snprintf(path, sizeof(path), "%s/servers/%s/main.c", ISOLA_SRCDIR,
			 device_kinds[i].name);
		if (access(path, R_OK))
			fail_msg("device kind %s has no server folder (%s)", device_kinds[i].name,
				 path);
	}
}

static void test_lookups(void **state)
{
	const struct device_kind *blk = device_kind_by_name("blk");
	const struct device_kind *rng = device_kind_by_name("rng");

	(void)state;
	assert_non_null(blk);
	assert_non_null(rng);
	assert_ptr_equal(device_kind_by_virtio_id(VIRTIO_ID_BLOCK), blk);
	assert_ptr_equal(device_kind_by_virtio_id(VIRTIO_ID_RNG), rng);
	assert_null(device_kind_by_name("nonesuch"));
	assert_null(device_kind_by_name(NULL));
	assert_null(device_kind_by_virtio_id(0));
	assert_int_equal(blk->config_owner, DEVICE_CONFIG_BACKEND);
	assert_int_equal(blk->config_size, 60); /* virtio 1.2 §5.2.4 up to write_zeroes_may_unmap */
	assert_int_equal(rng->config_owner, DEVICE_CONFIG_NONE);
}

static void test_options_the_core_may_pass(void **state)
{
	const struct device_kind *blk = device_kind_by_name("blk");
	const struct device_kind *rng = device_kind_by_name("rng");

	(void)state;
	assert_true(device_kind_option(blk, "--image")->has_value);
	assert_false(device_kind_option(blk, "--readonly")->has_value);
	assert_non_null(device_kind_option(blk, "--id"));
	assert_non_null(device_kind_option(rng, "--rate"));
	/* never: the spawner is root and the core may be jailed */
	assert_null(device_kind_option(blk, "--user"));
	assert_null(device_kind_option(blk, "--no-sandbox"));
	assert_null(device_kind_option(blk, "--socket"));
	assert_null(device_kind_option(rng, "--image"));
}

static void test_blk_fixup_single_queue_without_mq(void **state)
{
	const struct device_kind *blk = device_kind_by_name("blk");
	uint8_t config[60] = {0};
	struct device_fixup f = {.backend_features = 1ull << VIRTIO_F_VERSION_1,
				 .num_queues = 4,
				 .config = config,
				 .config_size = sizeof(config)};
	char err[128];

	(void)state;
	assert_non_null(blk->fixup);
	/* virtio 1.2 §5.2.6.2: without VIRTIO_BLK_F_MQ, one queue */
	assert_int_equal(blk->fixup(blk, &f, err, sizeof(err)), 0);
	assert_int_equal(f.num_queues, 1);
	f.num_queues = 4;
	f.backend_features |= 1ull << VIRTIO_BLK_F_MQ;
	assert_int_equal(blk->fixup(blk, &f, err, sizeof(err)), 0);
	assert_int_equal(f.num_queues, 4);
}

#define B(n) (1ull << (n))

/* docs/net.md "Queues and config": the front-end's config; isola-net
 * counts its control queue, an external back-end gets one pair and none. */
static void test_net_fixup(void **state)
{
	const struct device_kind *net = device_kind_by_name("net");
	uint8_t config[VIRTIO_NET_CONFIG_SIZE] = {2, 0, 0, 0, 0, 7};
	uint64_t isola_net = B(VIRTIO_F_VERSION_1) | B(VIRTIO_NET_F_CTRL_VQ) | B(VIRTIO_NET_F_MQ) |
			     B(VIRTIO_NET_F_CTRL_RX) | B(VIRTIO_NET_F_MRG_RXBUF) |
			     B(VIRTIO_NET_F_GUEST_CSUM) | B(VIRTIO_NET_F_GUEST_TSO4);
	struct device_fixup f = {.backend_features = isola_net,
				 .device_features = isola_net,
				 .num_queues = 5, /* 2 pairs + control */
				 .config = config,
				 .config_size = sizeof(config)};
	char err[160];

	(void)state;
	assert_non_null(net);
	assert_int_equal(net->config_owner, DEVICE_CONFIG_FRONTEND);
	config[VIRTIO_NET_CONFIG_MTU] = 1500 & 0xff;
	config[VIRTIO_NET_CONFIG_MTU + 1] = 1500 >> 8;
	assert_int_equal(net->fixup(net, &f, err, sizeof(err)), 0);
	assert_int_equal(f.num_queues, 5);
	assert_true(f.device_features & B(VIRTIO_NET_F_MQ));
	assert_true(f.device_features & B(VIRTIO_NET_F_CTRL_VQ));
	/* the front-end's bits: MAC, STATUS, MTU */
	assert_true(f.device_features & B(VIRTIO_NET_F_MAC));
	assert_true(f.device_features & B(VIRTIO_NET_F_STATUS));
	assert_true(f.device_features & B(VIRTIO_NET_F_MTU));
	assert_true(f.device_features & B(VIRTIO_NET_F_GUEST_TSO4));
	assert_int_equal(config[5], 7); /* the MAC is kept */
	assert_int_equal(config[VIRTIO_NET_CONFIG_STATUS], VIRTIO_NET_S_LINK_UP);
	assert_int_equal(config[VIRTIO_NET_CONFIG_MAX_PAIRS], 2);

	/* An external back-end (DPDK's net_vhost: GET_QUEUE_NUM is 128 queue
	 * pairs; it offers bits isola does not know, and GUEST_TSO4 without
	 * GUEST_CSUM): one pair, no control queue, only known features, the
	 * §5.1.3.1 dependencies kept. */
	f = (struct device_fixup){.backend_features = isola_net | B(6) | B(VIRTIO_F_IN_ORDER),
				  .num_queues = 128,
				  .config = config,
				  .config_size = sizeof(config),
				  .external_backend = true};
	f.device_features =
	    (f.backend_features | B(VIRTIO_NET_F_HOST_TSO4)) & ~B(VIRTIO_NET_F_GUEST_CSUM);
	assert_int_equal(net->fixup(net, &f, err, sizeof(err)), 0);
	assert_int_equal(f.num_queues, 2);
	assert_false(f.device_features &
		     (B(VIRTIO_NET_F_CTRL_VQ) | B(VIRTIO_NET_F_MQ) | B(VIRTIO_NET_F_CTRL_RX)));
	assert_false(f.device_features & (B(6) | B(VIRTIO_F_IN_ORDER)));
	assert_false(f.device_features & B(VIRTIO_NET_F_GUEST_TSO4)); /* needs GUEST_CSUM */
	assert_false(f.device_features & B(VIRTIO_NET_F_HOST_TSO4));  /* needs CSUM */
	assert_true(f.device_features & B(VIRTIO_NET_F_MRG_RXBUF));
	assert_int_equal(config[VIRTIO_NET_CONFIG_MAX_PAIRS], 1);

	/* No MTU from the core: the MTU feature is not offered. */
	config[VIRTIO_NET_CONFIG_MTU] = config[VIRTIO_NET_CONFIG_MTU + 1] = 0;
	f = (struct device_fixup){.backend_features = isola_net,
				  .device_features = isola_net | B(VIRTIO_NET_F_MTU),
				  .num_queues = 3,
				  .config = config,
				  .config_size = sizeof(config)};
	assert_int_equal(net->fixup(net, &f, err, sizeof(err)), 0);
	assert_int_equal(f.num_queues, 3);
	assert_false(f.device_features & B(VIRTIO_NET_F_MTU));
	assert_false(f.device_features & B(VIRTIO_NET_F_MQ));

	/* Refused from isola-net: no control queue counted (an even count, or
	 * no CTRL_VQ), several pairs without MQ, more pairs than fit. */
	f.num_queues = 4;
	assert_int_equal(net->fixup(net, &f, err, sizeof(err)), -EPROTO);
	f.num_queues = 1;
	assert_int_equal(net->fixup(net, &f, err, sizeof(err)), -EPROTO);
	f.num_queues = 5;
	f.backend_features = f.device_features = B(VIRTIO_F_VERSION_1) | B(VIRTIO_NET_F_CTRL_VQ);
	assert_int_equal(net->fixup(net, &f, err, sizeof(err)), -EPROTO);
	f.num_queues = 17;
	f.backend_features = f.device_features = isola_net;
	assert_int_equal(net->fixup(net, &f, err, sizeof(err)), -EPROTO);
	f.num_queues = 3;
	f.backend_features = f.device_features = B(VIRTIO_F_VERSION_1);
	assert_int_equal(net->fixup(net, &f, err, sizeof(err)), -EPROTO);
}

/* virtio 1.2 §5.10: the CID is the front-end's config (le64), the rings
 * are rx, tx and event; the core passes isola-vsock --cid and --uds only. */
static void test_vsock_row(void **state)
{
	const struct device_kind *vsock = device_kind_by_name("vsock");
	uint8_t config[8] = {52};
	struct device_fixup f = {.backend_features = 1ull << VIRTIO_F_VERSION_1,
				 .device_features = 1ull << VIRTIO_F_VERSION_1,
				 .num_queues = 3,
				 .config = config,
				 .config_size = sizeof(config)};
	char err[160];

	(void)state;
	assert_non_null(vsock);
	assert_ptr_equal(device_kind_by_virtio_id(VIRTIO_ID_VSOCK), vsock);
	assert_int_equal(vsock->virtio_id, 19);
	assert_int_equal(vsock->config_owner, DEVICE_CONFIG_FRONTEND);
	assert_int_equal(vsock->config_size, 8);
	assert_true(device_kind_option(vsock, "--cid")->has_value);
	assert_true(device_kind_option(vsock, "--uds")->has_value);
	assert_null(device_kind_option(vsock, "--max-connections"));
	assert_int_equal(vsock->fixup(vsock, &f, err, sizeof(err)), 0);
	assert_int_equal(f.num_queues, 3);
	assert_int_equal(config[0], 52); /* the core's CID, whatever the back-end says */
	f.num_queues = 4;
	assert_int_equal(vsock->fixup(vsock, &f, err, sizeof(err)), 0);
	assert_int_equal(f.num_queues, 3);
	/* a back-end without MQ (one ring) or with rx/tx only cannot serve it */
	f.num_queues = 2;
	assert_int_equal(vsock->fixup(vsock, &f, err, sizeof(err)), -EPROTO);
	assert_non_null(strstr(err, "serves 2 rings; virtio-vsock has 3"));
	f.num_queues = 3;
	f.config_size = 4;
	assert_int_equal(vsock->fixup(vsock, &f, err, sizeof(err)), -EINVAL);
	/* of a back-end's device-type bits, only stream sockets reach the
	 * guest (SEQPACKET, NO_IMPLIED_STREAM, unknown bits do not); the
	 * transport bits are the core's to decide */
	f.config_size = sizeof(config);
	f.device_features = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_EVENT_IDX) |
			    (1ull << VSOCK_F_STREAM) | (1ull << VSOCK_F_SEQPACKET) | (1ull << 2) |
			    (1ull << 23);
	assert_int_equal(vsock->fixup(vsock, &f, err, sizeof(err)), 0);
	assert_int_equal(f.device_features, (1ull << VIRTIO_F_VERSION_1) |
						(1ull << VIRTIO_F_EVENT_IDX) |
						(1ull << VSOCK_F_STREAM));
}

/* virtio-fs (virtio 1.2 §5.11): the front-end's config, the high-priority
 * queue and num_request_queues request queues, no device-type bits. */
static void test_fs_row(void **state)
{
	const struct device_kind *fs = device_kind_by_name("fs");
	uint8_t config[VIRTIO_FS_CONFIG_SIZE] = {'s', 'h', 'a', 'r', 'e'};
	uint64_t virtiofsd = B(VIRTIO_F_VERSION_1) | B(VIRTIO_F_INDIRECT_DESC) |
			     B(VIRTIO_F_EVENT_IDX) | B(24) /* NOTIFY_ON_EMPTY */ |
			     B(26) /* vhost's LOG_ALL */ | B(VIRTIO_FS_F_NOTIFICATION);
	struct device_fixup f = {.backend_features = virtiofsd,
				 .device_features = virtiofsd,
				 .num_queues = 2, /* Debian's virtiofsd: GET_QUEUE_NUM 2 */
				 .config = config,
				 .config_size = sizeof(config)};
	char err[200];

	(void)state;
	assert_non_null(fs);
	assert_ptr_equal(device_kind_by_virtio_id(26), fs);
	assert_int_equal(VIRTIO_ID_FS, 26);
	assert_int_equal(fs->config_owner, DEVICE_CONFIG_FRONTEND);
	assert_int_equal(fs->config_size, 40); /* tag[36] + le32 num_request_queues */
	assert_true(fs->hands_over_socket);
	assert_non_null(device_kind_option(fs, "--dir"));
	assert_null(device_kind_option(fs, "--socket"));
	assert_null(device_kind_option(fs, "--user"));
	config[VIRTIO_FS_CONFIG_NUM_REQUEST_QUEUES] = 1;
	assert_int_equal(fs->fixup(fs, &f, err, sizeof(err)), 0);
	assert_int_equal(f.num_queues, 2);
	assert_int_equal(f.device_features,
			 B(VIRTIO_F_VERSION_1) | B(VIRTIO_F_INDIRECT_DESC) | B(VIRTIO_F_EVENT_IDX));
	assert_memory_equal(config, "share", 5); /* the tag is the front-end's */
	/* a back-end with more queues gets what the config says */
	f.num_queues = 9;
	assert_int_equal(fs->fixup(fs, &f, err, sizeof(err)), 0);
	assert_int_equal(f.num_queues, 2);
	/* one with fewer than 1 + num_request_queues cannot serve */
	f.num_queues = 1;
	assert_int_equal(fs->fixup(fs, &f, err, sizeof(err)), -EPROTO);
	assert_non_null(strstr(err, "high-priority queue first"));
	config[VIRTIO_FS_CONFIG_NUM_REQUEST_QUEUES] = 3;
	f.num_queues = 4;
	assert_int_equal(fs->fixup(fs, &f, err, sizeof(err)), 0);
	assert_int_equal(f.num_queues, 4);
	config[VIRTIO_FS_CONFIG_NUM_REQUEST_QUEUES] = 0;
	assert_int_equal(fs->fixup(fs, &f, err, sizeof(err)), -EINVAL);
	config[VIRTIO_FS_CONFIG_NUM_REQUEST_QUEUES] = 1;
	f.config_size = 36;
	assert_int_equal(fs->fixup(fs, &f, err, sizeof(err)), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rows_are_consistent),
	    cmocka_unit_test(test_each_kind_has_a_server_folder),
	    cmocka_unit_test(test_lookups),
	    cmocka_unit_test(test_options_the_core_may_pass),
	    cmocka_unit_test(test_blk_fixup_single_queue_without_mq),
	    cmocka_unit_test(test_net_fixup),
	    cmocka_unit_test(test_vsock_row),
	    cmocka_unit_test(test_fs_row),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
