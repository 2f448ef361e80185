// SPDX-License-Identifier: MIT
/*
 * Firecracker's network interfaces (swagger "NetworkInterface",
 * "PartialNetworkInterface", "RateLimiter", "TokenBucket") into struct
 * net_config, whose rate limiters are lib/rate_limiter.h's SPEC text: the
 * text isola-net takes as --rx-rate/--tx-rate (docs/net.md).  Shared by the
 * API handlers and --config-file; a message always starts with the field's
 * path.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/api/api_internal.h"
#include "lib/rate_limiter.h"

#define API_IFNAME_MAX 15 /* IFNAMSIZ - 1 */

/* A TokenBucket's three integers; size or refill_time 0 is "no bucket",
 * as Firecracker's TokenBucket::new answers None for them. */
static int api_parse_bucket(json_object *v, const char *prefix, struct token_bucket *bucket,
			    char *err, size_t errlen)
{
	static const char *const known[] = {"size", "one_time_burst", "refill_time", NULL};
	static const char *const keys[] = {"size", "refill_time", "one_time_burst"};
	int64_t values[3] = {0, 0, 0};
	int ret = api_json_only(v, prefix, known, err, errlen);

	for (unsigned i = 0; i < 3 && ret >= 0; i++) {
		char path[256];

		ret = api_json_int(v, prefix, keys[i], i < 2, &values[i], err, errlen);
		api_json_path(path, sizeof(path), prefix, keys[i]);
		if (!ret && values[i] < 0)
			return api_fail(err, errlen, "%s: %lld is negative; use 0 or more", path,
					(long long)values[i]);
	}
	if (ret < 0)
		return ret;
	memset(bucket, 0, sizeof(*bucket));
	if (!values[0] || !values[1])
		return 0;
	bucket->size = (uint64_t)values[0];
	bucket->refill_time_ms = (uint64_t)values[1];
	bucket->initial_one_time_burst = bucket->one_time_burst = (uint64_t)values[2];
	return 0;
}

int api_parse_rate_limiter(json_object *v, const char *prefix, const char *key, bool patch,
			   char spec[CONFIG_RATE_SPEC_SIZE], char *err, size_t errlen)
{
	static const char *const known[] = {"bandwidth", "ops", NULL};
	static const char *const buckets[] = {"bandwidth", "ops"};
	struct rate_limiter rl = {0};
	json_object *limiter, *bucket;
	char path[256], sub[300], why[160];
	int ret;

	if (!json_object_object_get_ex(v, key, &limiter) || !limiter)
		return 1; /* absent: unchanged (PATCH) or no limit (PUT) */
	api_json_path(path, sizeof(path), prefix, key);
	ret = api_json_only(limiter, path, known, err, errlen);
	if (ret)
		return ret;
	/* PATCH changes the buckets it names and keeps the others
	 * (Firecracker's BucketUpdate::None); PUT starts from none. */
	if (patch && spec[0] && rate_limiter_parse(spec, &rl, why, sizeof(why)))
		return api_fail(err, errlen, "%s: the current limiter \"%s\" is unreadable: %s",
				path, spec, why);
	for (unsigned i = 0; i < 2; i++) {
		struct token_bucket *target = i ? &rl.ops : &rl.bytes;

		if (!json_object_object_get_ex(limiter, buckets[i], &bucket) || !bucket)
			continue;
		snprintf(sub, sizeof(sub), "%s.%s", path, buckets[i]);
		ret = api_parse_bucket(bucket, sub, target, err, errlen);
		if (ret)
			return ret;
	}
	ret = rate_limiter_format(&rl, sub, CONFIG_RATE_SPEC_SIZE);
	if (ret < 0)
		return api_fail(err, errlen, "%s: the numbers are too long", path);
	/* The text must read back: the checks isola-net applies at start
	 * (a refill time beyond what nanoseconds in 64 bits carry). */
	if (sub[0] && rate_limiter_parse(sub, &rl, why, sizeof(why)))
		return api_fail(err, errlen, "%s: %s", path, why);
	strcpy(spec, sub);
	return 0;
}

int api_parse_token_bucket(json_object *v, const char *prefix, const char *key,
			   char spec[CONFIG_RATE_SPEC_SIZE], char *err, size_t errlen)
{
	struct rate_limiter rl = {0};
	json_object *bucket;
	char path[256], sub[CONFIG_RATE_SPEC_SIZE], why[160];
	int ret;

	if (!json_object_object_get_ex(v, key, &bucket) || !bucket)
		return 1;
	api_json_path(path, sizeof(path), prefix, key);
	ret = api_parse_bucket(bucket, path, &rl.bytes, err, errlen);
	if (ret)
		return ret;
	if (rate_limiter_format(&rl, sub, sizeof(sub)) < 0)
		return api_fail(err, errlen, "%s: the numbers are too long", path);
	if (sub[0] && rate_limiter_parse(sub, &rl, why, sizeof(why)))
		return api_fail(err, errlen, "%s: %s", path, why);
	strcpy(spec, sub);
	return 0;
}

/* Linux's dev_valid_name(): 1..15 bytes, not "." or "..", no '/', ':' or
 * white space; */
static bool api_ifname_valid(const char *name)
{
	size_t len = strlen(name);

	/* and no leading '-': it is passed on as isola-net's --tap value */
	if (!len || len > API_IFNAME_MAX || name[0] == '-' || !strcmp(name, ".") ||
	    !strcmp(name, ".."))
		return false;
	for (const char *p = name; *p; p++)
		if (*p == '/' || *p == ':' || *p == ' ' || (*p >= '\t' && *p <= '\r'))
			return false;
	return true;
}

int api_parse_net(json_object *v, const char *prefix, const char *url_id, struct net_config *net,
		  char *err, size_t errlen)
{
	static const char *const known[] = {"iface_id",	       "host_dev_name",	  "guest_mac",
					    "rx_rate_limiter", "tx_rate_limiter", NULL};
	const char *id = NULL, *tap = NULL, *mac = NULL;
	char where[256];
	int ret;

	memset(net, 0, sizeof(*net));
	net->queues = 1;
	net->mtu = 1500;
	ret = api_json_only(v, prefix, known, err, errlen);
	if (!ret)
		ret = api_json_string(v, prefix, "iface_id", true, &id, err, errlen);
	if (!ret)
		ret = api_json_string(v, prefix, "host_dev_name", true, &tap, err, errlen);
	if (!ret)
		ret = api_json_string(v, prefix, "guest_mac", false, &mac, err, errlen);
	if (ret >= 0)
		ret = api_parse_rate_limiter(v, prefix, "rx_rate_limiter", false, net->rx_rate, err,
					     errlen);
	if (ret >= 0)
		ret = api_parse_rate_limiter(v, prefix, "tx_rate_limiter", false, net->tx_rate, err,
					     errlen);
	if (ret < 0)
		return ret;
	if (api_check_id(id, url_id, prefix, "iface_id", err, errlen))
		return -EINVAL;
	strcpy(net->iface_id, id);
	api_json_path(where, sizeof(where), prefix, "host_dev_name");
	if (!api_ifname_valid(tap))
		return api_fail(err, errlen,
				"%s: \"%.64s\" is not a network interface name; a tap's name is 1 "
				"to 15 bytes without '/', ':', spaces or a leading '-'",
				where, tap);
	strcpy(net->tap, tap);
	if (mac) {
		api_json_path(where, sizeof(where), prefix, "guest_mac");
		if (config_parse_mac(mac, net->mac))
			return api_fail(err, errlen,
					"%s: \"%.64s\" is not a MAC address; write six hex bytes, "
					"e.g. \"06:00:ac:10:00:02\"",
					where, mac);
		/* IEEE 802: bit 0 of the first byte is the group bit. */
		if (net->mac[0] & 1)
			return api_fail(err, errlen,
					"%s: %s is a multicast address; a guest's address must be "
					"unicast (first byte even)",
					where, mac);
		net->mac_given = true;
	}
	return 0;
}

int api_put_net(struct vm_config *cfg, const struct net_config *net, const char *prefix, char *err,
		size_t errlen)
{
	unsigned slot = cfg->nr_nets;

	for (unsigned i = 0; i < cfg->nr_nets; i++) {
		const struct net_config *other = &cfg->nets[i];

		if (!strcmp(other->iface_id, net->iface_id)) {
			slot = i; /* the same iface_id: replaced */
			continue;
		}
		/* Firecracker refuses a guest MAC in use (GuestMacAddressInUse);
		 * a tap in use fails its open there (EBUSY): one tap, one
		 * interface, said here rather than at InstanceStart. */
		if (other->tap[0] && !strcmp(other->tap, net->tap))
			return api_fail(err, errlen,
					"%s.host_dev_name: %s is used by interface \"%s\" already; "
					"give each interface a tap of its own",
					prefix, net->tap, other->iface_id);
		if (other->mac_given && net->mac_given && !memcmp(other->mac, net->mac, 6))
			return api_fail(err, errlen,
					"%s.guest_mac: interface \"%s\" has this MAC already; give "
					"each interface its own",
					prefix, other->iface_id);
	}
	if (slot == CONFIG_MAX_NETS)
		return api_fail(err, errlen,
				"%s: too many network interfaces; isola supports %d per VM", prefix,
				CONFIG_MAX_NETS);
	cfg->nets[slot] = *net;
	if (slot == cfg->nr_nets)
		cfg->nr_nets++;
	return 0;
}

json_object *api_bucket_to_json(const struct token_bucket *bucket)
{
	json_object *b = json_object_new_object();

	json_object_object_add(b, "size", json_object_new_int64((int64_t)bucket->size));
	if (bucket->initial_one_time_burst)
		json_object_object_add(
		    b, "one_time_burst",
		    json_object_new_int64((int64_t)bucket->initial_one_time_burst));
	json_object_object_add(b, "refill_time",
			       json_object_new_int64((int64_t)bucket->refill_time_ms));
	return b;
}

/* A SPEC text as Firecracker's RateLimiter; NULL for no limit (Firecracker
 * shows an unlimited one as absent). */
json_object *api_rate_limiter_to_json(const char *spec)
{
	struct rate_limiter rl;
	json_object *limiter;
	char why[160];

	if (!spec[0] || rate_limiter_parse(spec, &rl, why, sizeof(why)) ||
	    rate_limiter_is_unlimited(&rl))
		return NULL;
	limiter = json_object_new_object();
	if (rl.bytes.size)
		json_object_object_add(limiter, "bandwidth", api_bucket_to_json(&rl.bytes));
	if (rl.ops.size)
		json_object_object_add(limiter, "ops", api_bucket_to_json(&rl.ops));
	return limiter;
}

json_object *api_token_bucket_to_json(const char *spec)
{
	struct rate_limiter rl;
	char why[160];

	if (!spec[0] || rate_limiter_parse(spec, &rl, why, sizeof(why)) || !rl.bytes.size)
		return NULL;
	return api_bucket_to_json(&rl.bytes);
}

json_object *api_net_to_json(const struct net_config *net)
{
	json_object *n = json_object_new_object(), *limiter;
	const uint8_t *m = net->mac;
	char mac[18];

	if (!n)
		return NULL;
	json_object_object_add(n, "iface_id", json_object_new_string(net->iface_id));
	json_object_object_add(n, "host_dev_name", json_object_new_string(net->tap));
	if (net->mac_given) {
		snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3],
			 m[4], m[5]);
		json_object_object_add(n, "guest_mac", json_object_new_string(mac));
	}
	if ((limiter = api_rate_limiter_to_json(net->rx_rate)))
		json_object_object_add(n, "rx_rate_limiter", limiter);
	if ((limiter = api_rate_limiter_to_json(net->tx_rate)))
		json_object_object_add(n, "tx_rate_limiter", limiter);
	return n;
}
