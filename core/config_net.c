// SPDX-License-Identifier: MIT
/* --net and --vhost-user-net (docs/net.md). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "core/config_net.h"
#include "isola/virtio.h"
#include "lib/log.h"
#include "lib/rate_limiter.h"

int config_parse_mac(const char *text, uint8_t mac[6])
{
	unsigned bytes[6];
	char end;

	if (!text || strlen(text) != 17 ||
	    sscanf(text, "%2x:%2x:%2x:%2x:%2x:%2x%c", &bytes[0], &bytes[1], &bytes[2], &bytes[3],
		   &bytes[4], &bytes[5], &end) != 6)
		return -EINVAL;
	for (unsigned i = 0; i < 6; i++) {
		if (text[3 * i] == ' ' || text[3 * i] == '+' || text[3 * i] == '-')
			return -EINVAL;
		mac[i] = (uint8_t)bytes[i];
	}
	return 0;
}

/* Append "WHAT=SPEC" to a rate limiter's SPEC text (lib/rate_limiter.h). */
int config_append_bucket(char *spec, size_t size, const char *what, const char *value)
{
	size_t used = strlen(spec);
	int n = snprintf(spec + used, size - used, "%s%s=%s", used ? "," : "", what, value);

	return n < 0 || (size_t)n >= size - used ? -ENAMETOOLONG : 0;
}

int config_parse_net(struct net_config *net, const char *text, bool external, char *err,
		     size_t errlen)
{
	const char *flag = external ? "--vhost-user-net" : "--net";
	char buf[1024], *save = NULL, *item;

	memset(net, 0, sizeof(*net));
	net->queues = 1;
	net->mtu = 1500;
	if (strlen(text) >= sizeof(buf))
		return error_text(err, errlen, -EINVAL, "%s value is too long", flag);
	strcpy(buf, text);
	for (item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *value = strchr(item, '=');
		char *end;
		unsigned long n;

		if (!value)
			return error_text(err, errlen, -EINVAL,
					  "%s: '%s' is not KEY=VALUE; see 'isola run --help'", flag,
					  item);
		*value++ = '\0';
		if (!strcmp(item, "mac")) {
			if (config_parse_mac(value, net->mac))
				return error_text(err, errlen, -EINVAL,
						  "%s mac=%s: write a MAC as six hex bytes, e.g. "
						  "02:00:00:00:00:01",
						  flag, value);
			if (net->mac[0] & 1)
				return error_text(err, errlen, -EINVAL,
						  "%s mac=%s is a multicast address; a guest's "
						  "address must be unicast (first byte even)",
						  flag, value);
			net->mac_given = true;
		} else if (!strcmp(item, "mtu")) {
			errno = 0;
			n = strtoul(value, &end, 10);
			if (errno || *end || end == value || n < 68 || n > 65535)
				return error_text(err, errlen, -EINVAL,
						  "%s mtu=%s: use a number from 68 to 65535", flag,
						  value);
			net->mtu = (unsigned)n;
		} else if (!strcmp(item, "restart")) {
			if (strcmp(value, "always") && strcmp(value, "never"))
				return error_text(err, errlen, -EINVAL,
						  "%s restart=%s: use always or never", flag,
						  value);
			net->no_restart = !strcmp(value, "never");
		} else if (!external && !strcmp(item, "tap")) {
			if (!*value || strlen(value) >= sizeof(net->tap) || strchr(value, '/'))
				return error_text(
				    err, errlen, -EINVAL,
				    "--net tap=%s: a tap's name is 1 to 15 characters", value);
			strcpy(net->tap, value);
		} else if (!external && !strcmp(item, "queues")) {
			errno = 0;
			n = strtoul(value, &end, 10);
			if (errno || *end || end == value || n < 1 || n > CONFIG_MAX_NET_QUEUES)
				return error_text(
				    err, errlen, -EINVAL,
				    "--net queues=%s: use a number of queue pairs from "
				    "1 to %d",
				    value, CONFIG_MAX_NET_QUEUES);
			net->queues = (unsigned)n;
		} else if (!external && !strcmp(item, "offloads")) {
			if (strcmp(value, "on") && strcmp(value, "off"))
				return error_text(err, errlen, -EINVAL,
						  "--net offloads=%s: use on or off", value);
			net->no_offloads = !strcmp(value, "off");
		} else if (!external && !strcmp(item, "id")) {
			if (!*value || strlen(value) >= sizeof(net->iface_id))
				return error_text(err, errlen, -EINVAL,
						  "--net id=%s: an id is 1 to 64 characters",
						  value);
			strcpy(net->iface_id, value);
		} else if (!external && (!strcmp(item, "rx-bytes") || !strcmp(item, "rx-ops") ||
					 !strcmp(item, "tx-bytes") || !strcmp(item, "tx-ops"))) {
			char *spec = item[0] == 'r' ? net->rx_rate : net->tx_rate;

			if (config_append_bucket(spec, CONFIG_RATE_SPEC_SIZE, item + 3, value))
				return error_text(err, errlen, -EINVAL, "--net %s=%s is too long",
						  item, value);
		} else if (external && !strcmp(item, "socket")) {
			if (!*value || strlen(value) >= sizeof(net->socket))
				return error_text(err, errlen, -EINVAL,
						  "--vhost-user-net socket= needs a path shorter "
						  "than %zu bytes",
						  sizeof(net->socket));
			strcpy(net->socket, value);
		} else {
			return error_text(err, errlen, -EINVAL,
					  "%s: unknown key '%s'; see 'isola run --help'", flag,
					  item);
		}
	}
	for (int dir = 0; dir < 2; dir++) {
		const char *spec = dir ? net->tx_rate : net->rx_rate;
		struct rate_limiter limiter;
		char why[160];

		if (spec[0] && rate_limiter_parse(spec, &limiter, why, sizeof(why)))
			return error_text(err, errlen, -EINVAL,
					  "--net %s rate limiter: %s (each bucket is "
					  "SIZE:REFILL_MS[:ONE_TIME_BURST])",
					  dir ? "tx" : "rx", why);
	}
	if (!external && !net->tap[0])
		return error_text(err, errlen, -EINVAL,
				  "--net needs tap=NAME: a tap device in isola's network namespace "
				  "(docs/net.md)");
	if (external && !net->socket[0])
		return error_text(err, errlen, -EINVAL, "--vhost-user-net needs socket=PATH");
	return 0;
}

void config_net_finalize(struct net_config *net, unsigned index)
{
	if (!net->iface_id[0])
		snprintf(net->iface_id, sizeof(net->iface_id), "net%u", index);
	if (!net->mac_given) {
		/* A locally administered unicast address (IEEE 802: bit 1 of
		 * the first byte set, bit 0 clear), fixed for the whole run so a
		 * reboot keeps it. */
		if (getrandom(net->mac, sizeof(net->mac), 0) != sizeof(net->mac)) {
			net->mac[1] = 0x15;
			net->mac[5] = (uint8_t)index;
		}
		net->mac[0] = (uint8_t)((net->mac[0] & 0xfc) | 0x02);
		net->mac_given = true;
	}
}

void config_net_device_config(const struct net_config *net, uint8_t *config, unsigned size)
{
	memset(config, 0, size);
	if (size < VIRTIO_NET_CONFIG_SIZE)
		return;
	memcpy(config + VIRTIO_NET_CONFIG_MAC, net->mac, 6);
	config[VIRTIO_NET_CONFIG_MTU] = (uint8_t)net->mtu;
	config[VIRTIO_NET_CONFIG_MTU + 1] = (uint8_t)(net->mtu >> 8);
}
