// SPDX-License-Identifier: MIT
/*
 * isola-net's control state across a restart and a reset (docs/net.md
 * "Restart semantics"):
 *  - kept: what the driver set through the control queue (virtio 1.2
 *    §5.1.6.5): the receive filter's mode bits, the ADDR_SET MAC, the MAC
 *    tables, the active queue pairs.  Written through to the device-state
 *    area of the inflight region (lib/vhost_user_backend.h) after each
 *    successful command; the front-end keeps the region's fd and hands it to
 *    the next instance, which restores it (SET_INFLIGHT_FD);
 *  - forgotten at a device reset (VHOST_USER_SET_STATUS 0, §2.1.2): the
 *    filter, the pairs and the tap offloads go back to their defaults.
 * The saved area comes from a previous instance, but it is still input:
 * every field is checked before it is used.
 */
#define _GNU_SOURCE
#include "servers/net/net.h"

#include <errno.h>
#include <string.h>

#include "lib/log.h"

#define NET_STATE_VERSION 1u

/* What is kept, in the inflight region (a fixed layout: the size is part
 * of the lib's header check, the version is ours). */
struct net_saved_state {
	uint32_t version;
	uint8_t promisc, allmulti, uni_overflow, multi_overflow;
	uint8_t mac[NET_ETH_ALEN];
	uint16_t active_pairs;
	uint32_t nr_uni, nr_multi;
	uint8_t uni[NET_MAC_TABLE_ENTRIES][NET_ETH_ALEN];
	uint8_t multi[NET_MAC_TABLE_ENTRIES][NET_ETH_ALEN];
};
_Static_assert(sizeof(struct net_saved_state) <= VHOST_USER_BACKEND_STATE_MAX,
	       "net state fits the lib's area");

void net_state_save(struct net *net, struct vhost_user_backend *be)
{
	struct net_saved_state s;

	if (!be->device_state)
		return; /* no inflight region (QEMU gives vhost-user-net none) */
	memset(&s, 0, sizeof(s));
	s.version = NET_STATE_VERSION;
	pthread_mutex_lock(&net->filter_lock);
	s.promisc = net->filter.promisc;
	s.allmulti = net->filter.allmulti;
	s.uni_overflow = net->filter.uni_overflow;
	s.multi_overflow = net->filter.multi_overflow;
	memcpy(s.mac, net->filter.mac, NET_ETH_ALEN);
	s.nr_uni = net->filter.nr_uni;
	s.nr_multi = net->filter.nr_multi;
	memcpy(s.uni, net->filter.uni, sizeof(s.uni));
	memcpy(s.multi, net->filter.multi, sizeof(s.multi));
	pthread_mutex_unlock(&net->filter_lock);
	pthread_mutex_lock(&net->tap_lock);
	s.active_pairs = (uint16_t)net->active_pairs;
	pthread_mutex_unlock(&net->tap_lock);
	memcpy(be->device_state, &s, sizeof(s));
	vhost_user_backend_state_commit(be);
}

static bool net_state_flag_ok(uint8_t v)
{
	return v <= 1;
}

/* Every field as the control queue could have set it, else -EINVAL. */
static int net_state_check(const struct net *net, const struct net_saved_state *s)
{
	if (s->version != NET_STATE_VERSION || !net_state_flag_ok(s->promisc) ||
	    !net_state_flag_ok(s->allmulti) || !net_state_flag_ok(s->uni_overflow) ||
	    !net_state_flag_ok(s->multi_overflow))
		return -EINVAL;
	if (s->nr_uni > NET_MAC_TABLE_ENTRIES || s->nr_multi > NET_MAC_TABLE_ENTRIES ||
	    (s->uni_overflow && s->nr_uni) || (s->multi_overflow && s->nr_multi))
		return -EINVAL;
	/* §5.1.6.5.5: 1 to max_virtqueue_pairs, as VQ_PAIRS_SET checks. */
	if (s->active_pairs < VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MIN || s->active_pairs > net->pairs)
		return -EINVAL;
	return 0;
}

/* lib: ops->state_restored, every ring stopped (their start attaches the
 * tap queues of the restored pairs). */
int net_state_restored(void *device, struct vhost_user_backend *be, const void *state)
{
	struct net *net = device;
	struct net_saved_state s;
	struct net_filter *f = &net->filter;

	(void)be;
	memcpy(&s, state, sizeof(s)); /* shared memory: check and use one copy */
	if (net_state_check(net, &s))
		return -EINVAL;
	pthread_mutex_lock(&net->filter_lock);
	memset(f, 0, sizeof(*f));
	f->promisc = s.promisc;
	f->allmulti = s.allmulti;
	f->uni_overflow = s.uni_overflow;
	f->multi_overflow = s.multi_overflow;
	memcpy(f->mac, s.mac, NET_ETH_ALEN);
	f->nr_uni = s.nr_uni;
	f->nr_multi = s.nr_multi;
	memcpy(f->uni, s.uni, s.nr_uni * NET_ETH_ALEN);
	memcpy(f->multi, s.multi, s.nr_multi * NET_ETH_ALEN);
	atomic_fetch_add_explicit(&net->filter_gen, 1, memory_order_release);
	pthread_mutex_unlock(&net->filter_lock);
	pthread_mutex_lock(&net->tap_lock);
	net->active_pairs = s.active_pairs;
	pthread_mutex_unlock(&net->tap_lock);
	log_info("restored the driver's settings: promisc %u allmulti %u, %u unicast and %u "
		 "multicast addresses, %u queue pair%s",
		 s.promisc, s.allmulti, s.nr_uni, s.nr_multi, s.active_pairs,
		 s.active_pairs == 1 ? "" : "s");
	return 0;
}

/* lib: ops->set_status.  Status 0 (§2.1.2 reset; every ring stopped): the
 * next driver finds the device as after power-on. */
void net_state_set_status(void *device, struct vhost_user_backend *be, uint8_t status)
{
	struct net *net = device;

	if (status != 0)
		return;
	net_filter_reset(net); /* promiscuous, empty tables, config MAC, 1 pair */
	net_tap_sync(net, true);
	/* §5.1.6.4: offloads follow the features of the next driver; until its
	 * receive rings start (TUNSETOFFLOAD there), plain frames. */
	for (unsigned k = 0; k < net->pairs; k++)
		if (net->tap_fds[k] >= 0 && ioctl(net->tap_fds[k], TUNSETOFFLOAD, 0ul) < 0)
			log_warn("tap %s queue %u: TUNSETOFFLOAD 0: %s", net->tap_name, k,
				 strerror(errno));
	net_state_save(net, be);
	net_log_counters(net, "device reset by the driver");
}

void net_state_ops(struct vhost_user_backend_ops *ops)
{
	ops->set_status = net_state_set_status;
	ops->state_size = sizeof(struct net_saved_state);
	ops->state_restored = net_state_restored;
}
