/* SPDX-License-Identifier: MIT */
/* A VM's configuration, however it was given (flags today). */
#ifndef ISOLA_CORE_CONFIG_H
#define ISOLA_CORE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_DEFAULT_MEMORY (256ull << 20)
#define CONFIG_DEFAULT_CPUS 1
#define CONFIG_MAX_CPUS 255 /* xAPIC IDs 0..254; IOAPIC takes 255 */

enum console_mode { CONSOLE_STDIO, CONSOLE_NONE, CONSOLE_FILE };

/* What guest RAM is made of (Firecracker's machine-config "huge_pages"). */
enum config_huge_pages {
	CONFIG_HUGE_PAGES_NONE, /* shmem memfd: 4 KiB pages, 2 MiB THP where allowed */
	CONFIG_HUGE_PAGES_2M,	/* hugetlbfs memfd: 2 MiB pages from the host's pool */
};

#define CONFIG_MAX_DISKS 8

/* One block device: an image served by an isola-blk the core starts, or an
 * external vhost-user-blk back-end listening on `socket`. */
struct disk_config {
	char path[4096];
	char id[21];	  /* virtio-blk GET_ID: at most 20 bytes */
	char socket[108]; /* sun_path */
	bool readonly;
	/* From the API / --config-file (Firecracker's "Drive"); empty for --disk. */
	char drive_id[65];    /* Firecracker's id; `id` holds its first 20 bytes */
	char partuuid[65];    /* root=PARTUUID= when is_root_device */
	bool is_root_device;  /* first disk, root=/dev/vda (api_config_finalize) */
	bool cache_writeback; /* cache_type "Writeback" (isola-blk always flushes) */
	bool io_engine_async; /* io_engine "Async" (isola-blk always uses io_uring) */
	bool no_restart;      /* restart=never: a dead server is not restarted */
};

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

struct vm_config {
	const char *kernel_path;
	const char *initrd_path;
	const char *cmdline;
	uint64_t memory_bytes;
	enum config_huge_pages huge_pages; /* 2M: memory_bytes is a multiple of 2 MiB */
	unsigned nr_cpus;
	enum console_mode console;
	const char *console_path; /* CONSOLE_FILE */
	unsigned timeout_seconds; /* 0: none */
	struct disk_config disks[CONFIG_MAX_DISKS];
	unsigned nr_disks;
	struct net_config nets[CONFIG_MAX_NETS];
	unsigned nr_nets;
	bool rng;
	bool rng_no_restart;  /* --rng restart=never */
	bool reboot_on_reset; /* --on-reset reboot: a guest reset reboots in place */
	/* From the API / --config-file (Firecracker's schema). */
	const char *instance_id; /* GET / "id"; NULL: "anonymous-instance" */
	bool logger;		 /* "logger" given: the fields below apply */
	const char *log_path;	 /* NULL: stderr */
	int log_level;		 /* enum log_level (lib/log.h) */
	bool log_show_level, log_show_origin;
	const char *metrics_path; /* NULL: no metrics */
	/* The strings above were malloc'd by api_config_*(): api_config_release()
	 * frees them.  false for `isola run` (they point into argv). */
	bool owns_strings;
};

/* Parse "path=IMG[,readonly=on|off][,id=NAME]" (--disk) or "socket=PATH"
 * (--vhost-user-blk) into disk; -EINVAL with a sentence in err. */
int config_parse_disk(struct disk_config *disk, const char *text, bool external, char *err,
		      size_t errlen);

/* Parse "tap=NAME[,mac=M][,queues=N][,mtu=N][,offloads=on|off]
 * [,rx-bytes=B][,rx-ops=B][,tx-bytes=B][,tx-ops=B][,id=ID][,restart=..]"
 * (--net; B is SIZE:REFILL_MS[:ONE_TIME_BURST]) or "socket=PATH[,mac=M]
 * [,mtu=N][,restart=..]" (--vhost-user-net) into net; -EINVAL with a
 * sentence in err. */
int config_parse_net(struct net_config *net, const char *text, bool external, char *err,
		     size_t errlen);
/* "02:00:00:00:00:01" -> mac; -EINVAL if malformed. */
int config_parse_mac(const char *text, uint8_t mac[6]);
/* Defaults for what was not given: a locally administered MAC from random
 * bytes, iface_id "netI". */
void config_net_finalize(struct net_config *net, unsigned index);
/* The virtio-net config the front-end owns (include/isola/virtio.h
 * VIRTIO_NET_CONFIG_*): MAC and MTU; the rest is the device kind's. */
void config_net_device_config(const struct net_config *net, uint8_t *config, unsigned size);

void config_defaults(struct vm_config *cfg);

/*
 * Parse `isola run` flags (argv[0] is "run").  Returns 0 on success, 1 if
 * --help was printed, or -EINVAL after writing one line that says what is
 * wrong into err.
 */
int config_parse_run_args(struct vm_config *cfg, int argc, char **argv, char *err, size_t errlen);

/* "256M", "1G", "512" (MiB) -> bytes; -EINVAL if malformed, -ERANGE if huge. */
int config_parse_size(const char *text, uint64_t *bytes);

#endif
