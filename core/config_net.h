/* SPDX-License-Identifier: MIT */
/* A network interface's configuration (--net, --vhost-user-net, the API's
 * network-interfaces): docs/net.md. */
#ifndef ISOLA_CORE_CONFIG_NET_H
#define ISOLA_CORE_CONFIG_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_MAX_NETS 4
#define CONFIG_MAX_NET_QUEUES 4 /* queue pairs per interface: 2N+1 rings fit in 16 */
#define CONFIG_RATE_SPEC_SIZE 128

/* One network interface (docs/net.md): a tap served by an isola-net the
 * core starts, or an external vhost-user-net back-end listening on
 * `socket`. */
struct net_config {
	char tap[16];	  /* IFNAMSIZ */
	char socket[108]; /* sun_path */
	uint8_t mac[6];	  /* given, or made by config_net_finalize() */
	bool mac_given;
	unsigned queues; /* queue pairs, 1..CONFIG_MAX_NET_QUEUES */
	unsigned mtu;	 /* reported to the guest (VIRTIO_NET_F_MTU) */
	bool no_offloads;
	/* Token buckets (lib/rate_limiter.h's SPEC text); "" for none. */
	char rx_rate[CONFIG_RATE_SPEC_SIZE], tx_rate[CONFIG_RATE_SPEC_SIZE];
	char iface_id[65]; /* Firecracker's iface_id (API), or "net0".. */
	bool no_restart;   /* restart=never */
};

/* Parse "tap=NAME[,mac=M][,queues=N][,mtu=N][,offloads=on|off]
 * [,rx-bytes=B][,rx-ops=B][,tx-bytes=B][,tx-ops=B][,id=ID][,restart=..]"
 * (--net; B is SIZE:REFILL_MS[:ONE_TIME_BURST]) or "socket=PATH[,mac=M]
 * [,mtu=N][,restart=..]" (--vhost-user-net) into net; -EINVAL with a
 * sentence in err. */
int config_parse_net(struct net_config *net, const char *text, bool external, char *err,
		     size_t errlen);
/* Append "WHAT=VALUE" (a bucket of a SPEC: lib/rate_limiter.h) to spec,
 * with a ',' if it is not empty; -ENAMETOOLONG if it does not fit. */
int config_append_bucket(char *spec, size_t size, const char *what, const char *value);
/* "02:00:00:00:00:01" -> mac; -EINVAL if malformed. */
int config_parse_mac(const char *text, uint8_t mac[6]);
/* Defaults for what was not given: a locally administered MAC from random
 * bytes, iface_id "netI". */
void config_net_finalize(struct net_config *net, unsigned index);
/* The virtio-net config the front-end owns (include/isola/virtio.h
 * VIRTIO_NET_CONFIG_*): MAC and MTU; the rest is the device kind's. */
void config_net_device_config(const struct net_config *net, uint8_t *config, unsigned size);

#endif
