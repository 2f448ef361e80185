/* SPDX-License-Identifier: MIT */
/*
 * The device-kind table: everything the core knows about one type of virtio
 * device served by a device server.  The VM (PCI identity), the device set
 * (which server binary, which options the spawner may pass it) and the
 * vhost-user front-end (config size and owner, per-type fix-ups) all derive
 * what they need from one row.  Adding a device type is one row here and
 * one folder under servers/ (docs/devices.md).
 */
#ifndef ISOLA_DEVICES_DEVICE_KIND_H
#define ISOLA_DEVICES_DEVICE_KIND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DEVICE_KIND_MAX_OPTIONS 8

/* Who answers the guest's reads of the device config space. */
enum device_config_owner {
	DEVICE_CONFIG_NONE,    /* the type has no config space (rng) */
	DEVICE_CONFIG_BACKEND, /* read from the back-end (GET_CONFIG), e.g. blk */
	DEVICE_CONFIG_FRONTEND /* filled in by the front-end (fixup), e.g. net's MAC */
};

/* An option the core may pass to the kind's server (the spawner refuses
 * any other: it runs as root, the core may be jailed). */
struct device_kind_option {
	const char *name; /* "--image" */
	bool has_value;
};

struct device_kind;

/* What a fix-up sees and adjusts after negotiation. */
struct device_fixup {
	uint64_t backend_features; /* in: what the back-end offers */
	uint64_t device_features;  /* in: the same; out: what the guest is offered.  Bits
				    * the back-end did not offer are the front-end's (net's
				    * MAC, STATUS) and are never sent to the back-end. */
	uint16_t num_queues;	   /* in: the back-end's count; out: the device's */
	uint8_t *config;	   /* in: the back-end's (GET_CONFIG) or the core's
				    * bytes (front-end owned); out: the guest's */
	uint32_t config_size;
	bool external_backend; /* a back-end isola did not start (--vhost-user-net) */
};

/* After negotiation: adjust what the back-end offered to what this type
 * allows (e.g. blk without VIRTIO_BLK_F_MQ serves one queue), and complete
 * a front-end-owned config.  0 or -errno with a sentence in err. */
typedef int (*device_kind_fixup_fn)(const struct device_kind *kind, struct device_fixup *fixup,
				    char *err, size_t errlen);

struct device_kind {
	const char *name;   /* "blk": the server is isola-<name>, from servers/<name>/ */
	uint16_t virtio_id; /* virtio 1.2 §5 */
	uint16_t pci_class; /* class code << 8 | subclass */
	struct device_kind_option options[DEVICE_KIND_MAX_OPTIONS]; /* ends at name NULL */
	uint32_t config_size; /* bytes of device config the front-end exposes */
	enum device_config_owner config_owner;
	device_kind_fixup_fn fixup; /* may be NULL */
	/* The server is a launcher for someone else's back-end (fs: Debian's
	 * virtiofsd): it sends the core the back-end's connected socket over
	 * fd 3 (SCM_RIGHTS) instead of serving vhost-user on fd 3 itself. */
	bool hands_over_socket;
	/* The option naming the host resource a restore may point elsewhere
	 * (isola restore's --drive-override and friends: each clone its own
	 * image, tap or socket); NULL if the kind has none.  One of options[],
	 * with a value. */
	const char *restore_override_option;
};

extern const struct device_kind device_kinds[];
extern const unsigned device_kinds_count;

/* The row for a name ("blk") or a virtio id; NULL if none. */
const struct device_kind *device_kind_by_name(const char *name);
const struct device_kind *device_kind_by_virtio_id(uint16_t virtio_id);
/* The option's row if the kind's server takes it from the core; NULL if not. */
const struct device_kind_option *device_kind_option(const struct device_kind *kind,
						    const char *option);

#endif
