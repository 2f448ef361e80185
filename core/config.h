/* SPDX-License-Identifier: MIT */
/* A VM's configuration, however it was given (flags today). */
#ifndef ISOLA_CORE_CONFIG_H
#define ISOLA_CORE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config_fs.h"
#include "core/config_net.h"
#include "core/config_vsock.h"

#define CONFIG_DEFAULT_MEMORY (256ull << 20)
#define CONFIG_DEFAULT_CPUS 1
#define CONFIG_MAX_CPUS 255 /* xAPIC IDs 0..254; IOAPIC takes 255 */

enum console_mode { CONSOLE_STDIO, CONSOLE_NONE, CONSOLE_FILE };

/* What guest RAM is made of (Firecracker's machine-config "huge_pages"). */
enum config_huge_pages {
	CONFIG_HUGE_PAGES_NONE, /* shmem memfd: 4 KiB pages, 2 MiB THP where allowed */
	CONFIG_HUGE_PAGES_2M,	/* hugetlbfs memfd: 2 MiB pages from the host's pool */
	/* Firecracker's "Transparent" (THP by madvise): what NONE gives already
	 * (lib/gmem.c advises MADV_HUGEPAGE); kept apart to echo it back */
	CONFIG_HUGE_PAGES_TRANSPARENT,
};

/* Every virtio device is a function on PCI bus 0: 32 slots, slot 0 the
 * host bridge (devices/pci.h, core/board.c).  That is the only limit on
 * drives: as many as the slots the other devices leave. */
#define CONFIG_MAX_PCI_DEVICES 31
#define CONFIG_MAX_DISKS CONFIG_MAX_PCI_DEVICES

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
	/* isola-blk's --rate (lib/rate_limiter.h's SPEC: bytes = request data,
	 * ops = requests; Firecracker's Drive "rate_limiter"); "" none. */
	char rate[CONFIG_RATE_SPEC_SIZE];
};

/*
 * A restore's new backing for one of the snapshot's devices, so that many
 * VMs restored from one snapshot need not share a disk image or a tap
 * (docs/snapshot.md "Clones"): PUT /snapshot/load's network_overrides
 * (Firecracker's NetworkOverride: iface_id, host_dev_name) and
 * vsock_override (VsockOverride: uds_path), isola's drive_overrides
 * (drive_id, path_on_host); `isola restore --net-override`,
 * `--vsock-override`, `--drive-override`.
 */
enum config_override_kind {
	CONFIG_OVERRIDE_DRIVE, /* isola-blk's --image */
	CONFIG_OVERRIDE_NET,   /* isola-net's --tap */
	CONFIG_OVERRIDE_VSOCK, /* isola-vsock's --uds */
};
#define CONFIG_MAX_OVERRIDES 16
struct config_override {
	enum config_override_kind kind;
	char id[65];	  /* a drive's id or name, an interface's name; "" for vsock */
	char value[4096]; /* the image path, the tap's name, the socket path */
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
	bool rng_no_restart; /* --rng restart=never */
	/* isola-rng's --rate (SPEC: bytes = entropy handed out, ops =
	 * requests; Firecracker's EntropyDevice "rate_limiter"); "" none. */
	char rng_rate[CONFIG_RATE_SPEC_SIZE];
	/* The serial console's output limit: a SPEC with a bytes bucket only
	 * (Firecracker's SerialDevice "rate_limiter", a TokenBucket: bytes
	 * over it are dropped and counted); "" none. */
	char serial_rate[CONFIG_RATE_SPEC_SIZE];
	/* --vsock / PUT /vsock: one virtio-vsock device served by isola-vsock */
	struct vsock_config vsock;
	/* --fs: shared directories, virtio-fs devices (docs/fs.md) */
	struct fs_config fs[CONFIG_MAX_FS];
	unsigned nr_fs;
	bool reboot_on_reset; /* --on-reset reboot: a guest reset reboots in place */
	/* Restore instead of boot (PUT /snapshot/load, `isola restore`): the
	 * state file and the memory file (core/snapshot.h); the VM's shape
	 * comes from the state file, not from the fields above. */
	const char *restore_state_path;
	const char *restore_mem_path;
	bool restore_resume; /* run at once; else Paused until PATCH /vm Resumed */
	struct config_override overrides[CONFIG_MAX_OVERRIDES];
	unsigned nr_overrides;
	/* From the API / --config-file (Firecracker's schema). */
	const char *instance_id; /* GET / "id"; NULL: "anonymous-instance" */
	bool logger;		 /* "logger" given: the fields below apply */
	const char *log_path;	 /* NULL: stderr */
	int log_level;		 /* enum log_level (lib/log.h) */
	bool log_show_level, log_show_origin;
	const char *metrics_path; /* NULL: no metrics */
	const char *log_module;	  /* logger "module": only lines from files under it */
	bool smt;		  /* machine-config "smt": recorded and echoed only */
	bool track_dirty_pages;	  /* recorded and echoed; dirty logging comes with snapshots */
	/* Bytes api_config_finalize appended to cmdline (" root=/dev/vda rw"):
	 * GET /vm/config echoes boot_args without them. */
	unsigned cmdline_appended;
	/* The strings above were malloc'd by api_config_*(): api_config_release()
	 * frees them.  false for `isola run` (they point into argv). */
	bool owns_strings;
};

/* Parse "path=IMG[,readonly=on|off][,id=NAME][,bytes=B][,ops=B]" (--disk;
 * B a token bucket SIZE:REFILL_MS[:ONE_TIME_BURST]) or "socket=PATH"
 * (--vhost-user-blk) into disk; -EINVAL with a sentence in err. */
int config_parse_disk(struct disk_config *disk, const char *text, bool external, char *err,
		      size_t errlen);

/* Append an override of kind with id and value (copied) to cfg's list;
 * -EINVAL (empty or too long, a repeated device, a second vsock) or
 * -E2BIG (the list is full) with a sentence in err naming `where`. */
int config_add_override(struct vm_config *cfg, enum config_override_kind kind, const char *id,
			const char *value, const char *where, char *err, size_t errlen);

void config_defaults(struct vm_config *cfg);
/* --console MODE (stdio, none, file:PATH; PATH points into text); -EINVAL
 * with a sentence in err. */
int config_set_console(struct vm_config *cfg, const char *text, char *err, size_t errlen);

/* The virtio devices cfg asks for (drives, interfaces, entropy, vsock). */
unsigned config_device_count(const struct vm_config *cfg);
/* The devices beside drives and interfaces, for a sentence: "", " and the
 * entropy device", ", the entropy device and the vsock device", ... */
const char *config_device_extras(const struct vm_config *cfg);
/* -ENOSPC with a sentence in err if they do not fit on the PCI bus. */
int config_check_device_count(const struct vm_config *cfg, char *err, size_t errlen);

/*
 * Parse `isola run` flags (argv[0] is "run").  Returns 0 on success, 1 if
 * --help was printed, or -EINVAL after writing one line that says what is
 * wrong into err.
 */
int config_parse_run_args(struct vm_config *cfg, int argc, char **argv, char *err, size_t errlen);

/* "256M", "1G", "512" (MiB) -> bytes; -EINVAL if malformed, -ERANGE if huge. */
int config_parse_size(const char *text, uint64_t *bytes);

#endif
