// SPDX-License-Identifier: MIT
/*
 * isola-net: a virtio-net device (virtio 1.2 §5.1) on a Linux tap, served
 * over vhost-user and sandboxed.  Its options (docs/net.md) and the hooks
 * lib/server_main.c calls: attach to the tap (before the sandbox, in the
 * network namespace it was started in), allocate the queues' buffers, keep
 * the tap's fds, serve, log the counters.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/server_main.h"
#include "servers/net/net.h"

static int net_parse_tap(void *device, const struct server_option *option, const char *value)
{
	struct net *net = device;

	if (!*value || strlen(value) >= IFNAMSIZ || strchr(value, '/') || strchr(value, ' ')) {
		log_error("%s %s: want an interface name of 1 to %d characters", option->name,
			  value, IFNAMSIZ - 1);
		return -EINVAL;
	}
	snprintf(net->tap_name, sizeof(net->tap_name), "%s", value);
	return 0;
}

static int net_parse_number(const struct server_option *option, const char *text, long min,
			    long max, long *out)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(text, &end, 10);
	if (errno || *end || !*text || n < min || n > max) {
		log_error("%s %s: want a number from %ld to %ld", option->name, text, min, max);
		return -EINVAL;
	}
	*out = n;
	return 0;
}

static int net_parse_queues(void *device, const struct server_option *option, const char *value)
{
	long n;
	int ret = net_parse_number(option, value, 1, NET_MAX_PAIRS, &n);

	((struct net *)device)->pairs = (unsigned)n;
	return ret;
}

/* 68 (RFC 791's minimum) to what a 64 KiB frame can carry. */
static int net_parse_mtu(void *device, const struct server_option *option, const char *value)
{
	long n;
	int ret = net_parse_number(option, value, 68, 65535, &n);

	((struct net *)device)->mtu = (uint16_t)n;
	return ret;
}

static int net_parse_mac(void *device, const struct server_option *option, const char *value)
{
	struct net *net = device;
	unsigned b[NET_ETH_ALEN];
	char tail;

	if (sscanf(value, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
		   &tail) != 6 ||
	    strlen(value) != 17) {
		log_error("%s %s: want six hex bytes, XX:XX:XX:XX:XX:XX", option->name, value);
		return -EINVAL;
	}
	if (b[0] & 1) {
		log_error("%s %s: a multicast address cannot be an interface's (clear bit 0 of "
			  "the first byte)",
			  option->name, value);
		return -EINVAL;
	}
	for (unsigned i = 0; i < NET_ETH_ALEN; i++)
		net->mac[i] = (uint8_t)b[i];
	net->mac_given = true;
	return 0;
}

static int net_parse_no_offloads(void *device, const struct server_option *option,
				 const char *value)
{
	(void)option;
	(void)value;
	((struct net *)device)->offloads = false;
	return 0;
}

static int net_parse_rate(const struct server_option *option, const char *value,
			  struct rate_limiter *rl)
{
	char err[256];

	if (rate_limiter_parse(value, rl, err, sizeof(err)) < 0) {
		log_error("%s %s: %s", option->name, value, err);
		return -EINVAL;
	}
	return 0;
}

static int net_parse_rx_rate(void *device, const struct server_option *option, const char *value)
{
	return net_parse_rate(option, value, &((struct net *)device)->rx_rate);
}

static int net_parse_tx_rate(void *device, const struct server_option *option, const char *value)
{
	return net_parse_rate(option, value, &((struct net *)device)->tx_rate);
}

/* The tap was deleted (net_tap_lost logged it): the server ends with a
 * failure status from the ring thread that found it, since nothing it
 * serves can work again; the core's restart policy takes over
 * (docs/net.md).  _exit: the other threads still run. */
static void net_tap_gone(struct net *net)
{
	net_log_counters(net, "exit");
	_exit(1);
}

static int net_create(void *device, char *err, size_t errlen)
{
	struct net *net = device;
	int ret;

	net->tap_gone = net_tap_gone;
	ret = net_init(net, err, errlen);

	return ret < 0 ? ret : net_open_tap(net, err, errlen);
}

static int net_prepare(void *device, struct server_backend *backend, char *err, size_t errlen)
{
	struct net *net = device;

	backend->ops = &net->ops;
	return net_alloc_queues(net, err, errlen);
}

static unsigned net_keep_fds(void *device, int *fds, unsigned max)
{
	return net_fds(device, fds, max);
}

static void net_started(void *device)
{
	struct net *net = device;
	const uint8_t *m = net->mac;
	char rx[128], tx[128];

	if (rate_limiter_format(&net->rx_rate, rx, sizeof(rx)) <= 0)
		snprintf(rx, sizeof(rx), "none");
	if (rate_limiter_format(&net->tx_rate, tx, sizeof(tx)) <= 0)
		snprintf(tx, sizeof(tx), "none");
	log_info("serving tap %s (%u queue pair%s, mac %02x:%02x:%02x:%02x:%02x:%02x, mtu %u, "
		 "offloads %s, rx limit %s, tx limit %s)",
		 net->tap_name, net->pairs, net->pairs == 1 ? "" : "s", m[0], m[1], m[2], m[3],
		 m[4], m[5], net->mtu, net->offloads ? "on" : "off", rx, tx);
}

static void net_destroy(void *device)
{
	struct net *net = device;

	net_log_counters(net, "exit");
	net_close(net);
}

static const struct server_option net_options[] = {
    {"--tap", "NAME", true,
     "the tap to attach to (it must exist in this network\n"
     "namespace: ip tuntap add NAME mode tap [multi_queue])",
     net_parse_tap},
    {"--queues", "N", false,
     "queue pairs, 1 to 7 (default 1); N > 1 needs a\n"
     "multi_queue tap, one tap queue per pair",
     net_parse_queues},
    {"--mac", "XX:XX:XX:XX:XX:XX", false,
     "the guest's MAC (default: a locally administered\n"
     "address derived from the tap's name)",
     net_parse_mac},
    {"--mtu", "N", false, "the MTU reported to the guest (default 1500)", net_parse_mtu},
    {"--no-offloads", NULL, false, "offer no checksum/TSO/UFO offloads (plain frames)",
     net_parse_no_offloads},
    {"--rx-rate", "SPEC", false,
     "limit what the guest receives: bytes=SIZE:REFILL_MS\n"
     "[:BURST],ops=SIZE:REFILL_MS[:BURST] (Firecracker's\n"
     "token buckets; ops counts frames)",
     net_parse_rx_rate},
    {"--tx-rate", "SPEC", false, "limit what the guest sends (SPEC as --rx-rate)",
     net_parse_tx_rate},
    {0},
};

static const struct server_def net_server_def = {
    .name = "isola-net",
    .description = "A virtio-net device (virtio 1.2 5.1) on a Linux tap, served by a vhost-user\n"
		   "back-end (QEMU's -netdev vhost-user, the isola core, DPDK's virtio_user).\n",
    .options = net_options,
    .allowlist = &net_sandbox_allowlist,
    .create = net_create,
    .prepare = net_prepare,
    .keep_fds = net_keep_fds,
    .started = net_started,
    .destroy = net_destroy,
};

int main(int argc, char **argv)
{
	static struct net net = {.pairs = 1, .mtu = 1500, .offloads = true};

	return server_main(argc, argv, &net_server_def, &net);
}
