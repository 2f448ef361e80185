// SPDX-License-Identifier: MIT
#define _GNU_SOURCE
#include "core/config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "arch/x86/layout.h"
#include "lib/rate_limiter.h"

unsigned config_device_count(const struct vm_config *cfg)
{
	return cfg->nr_disks + cfg->nr_nets + (cfg->rng ? 1 : 0) + (cfg->vsock.enabled ? 1 : 0) +
	       cfg->nr_fs;
}

const char *config_device_extras(const struct vm_config *cfg)
{
	if (cfg->rng && cfg->vsock.enabled)
		return ", the entropy device and the vsock device";
	if (cfg->rng)
		return " and the entropy device";
	return cfg->vsock.enabled ? " and the vsock device" : "";
}

int config_check_device_count(const struct vm_config *cfg, char *err, size_t errlen)
{
	if (config_device_count(cfg) <= CONFIG_MAX_PCI_DEVICES)
		return 0;
	snprintf(err, errlen,
		 "%u drives, %u network interfaces%s%s are %u devices; the PCI bus holds %u "
		 "(32 slots, one the host bridge): remove %u",
		 cfg->nr_disks, cfg->nr_nets, config_device_extras(cfg),
		 cfg->nr_fs ? " and the shared directories (--fs)" : "", config_device_count(cfg),
		 CONFIG_MAX_PCI_DEVICES, config_device_count(cfg) - CONFIG_MAX_PCI_DEVICES);
	return -ENOSPC;
}

int config_add_override(struct vm_config *cfg, enum config_override_kind kind, const char *id,
			const char *value, const char *where, char *err, size_t errlen)
{
	struct config_override *o;

	if (kind != CONFIG_OVERRIDE_VSOCK && (!*id || strlen(id) >= sizeof(o->id))) {
		snprintf(err, errlen, "%s: the device's id must be 1 to %zu bytes", where,
			 sizeof(o->id) - 1);
		return -EINVAL;
	}
	if (!*value || strlen(value) >= (kind == CONFIG_OVERRIDE_NET ? 16 : sizeof(o->value))) {
		snprintf(err, errlen, "%s: the new %s must be 1 to %zu bytes", where,
			 kind == CONFIG_OVERRIDE_NET	 ? "tap's name"
			 : kind == CONFIG_OVERRIDE_DRIVE ? "image path"
							 : "socket path",
			 kind == CONFIG_OVERRIDE_NET ? (size_t)15 : sizeof(o->value) - 1);
		return -EINVAL;
	}
	for (unsigned i = 0; i < cfg->nr_overrides; i++) {
		if (cfg->overrides[i].kind != kind || strcmp(cfg->overrides[i].id, id))
			continue;
		snprintf(err, errlen, "%s: %s%s%s is overridden twice; give one new %s", where,
			 kind == CONFIG_OVERRIDE_VSOCK ? "the vsock device" : "\"",
			 kind == CONFIG_OVERRIDE_VSOCK ? "" : id,
			 kind == CONFIG_OVERRIDE_VSOCK ? "" : "\"",
			 kind == CONFIG_OVERRIDE_NET ? "tap" : "path");
		return -EINVAL;
	}
	if (cfg->nr_overrides == CONFIG_MAX_OVERRIDES) {
		snprintf(err, errlen, "%s: more than %u overrides", where, CONFIG_MAX_OVERRIDES);
		return -E2BIG;
	}
	o = &cfg->overrides[cfg->nr_overrides++];
	o->kind = kind;
	snprintf(o->id, sizeof(o->id), "%s", id);
	snprintf(o->value, sizeof(o->value), "%s", value);
	return 0;
}

void config_defaults(struct vm_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->memory_bytes = CONFIG_DEFAULT_MEMORY;
	cfg->nr_cpus = CONFIG_DEFAULT_CPUS;
	cfg->console = CONSOLE_STDIO;
}

static int config_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int config_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int config_parse_size(const char *text, uint64_t *bytes)
{
	static const char suffixes[] = "KMGT";
	unsigned long long value;
	unsigned shift = 20; /* a bare number is MiB, like Firecracker's mem_size_mib */
	const char *unit;
	char *end;

	if (!text || *text < '0' || *text > '9')
		return -EINVAL;
	errno = 0;
	value = strtoull(text, &end, 10);
	if (errno)
		return -ERANGE;
	if (*end) {
		/* "512M", "512MB" and "512MiB" all mean MiB. */
		unit = strchr(suffixes, *end & ~0x20);
		if (!unit || !(*end & ~0x20))
			return -EINVAL;
		shift = 10 * (unsigned)(unit - suffixes + 1);
		end++;
		if (!strcmp(end, "iB") || !strcmp(end, "B"))
			end += strlen(end);
		if (*end)
			return -EINVAL;
	}
	if (value > (UINT64_MAX >> shift))
		return -ERANGE;
	*bytes = (uint64_t)value << shift;
	return 0;
}

static int parse_unsigned(const char *text, unsigned long max, unsigned *out)
{
	unsigned long value;
	char *end;

	if (!text || !*text || *text == '-' || *text == '+')
		return -EINVAL;
	errno = 0;
	value = strtoul(text, &end, 10);
	if (errno || *end || end == text)
		return -EINVAL;
	if (value > max)
		return -ERANGE;
	*out = (unsigned)value;
	return 0;
}

int config_parse_disk(struct disk_config *disk, const char *text, bool external, char *err,
		      size_t errlen)
{
	const char *flag = external ? "--vhost-user-blk" : "--disk";
	char buf[4200], *save = NULL, *item;

	memset(disk, 0, sizeof(*disk));
	if (strlen(text) >= sizeof(buf))
		return config_err(err, errlen, "%s value is too long", flag);
	strcpy(buf, text);
	for (item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *value = strchr(item, '=');

		if (!value)
			return config_err(err, errlen,
					  "%s: '%s' is not KEY=VALUE; see 'isola run --help'", flag,
					  item);
		*value++ = '\0';
		if (!external && !strcmp(item, "path")) {
			if (!*value || strlen(value) >= sizeof(disk->path))
				return config_err(err, errlen,
						  "--disk path= needs an image file path");
			strcpy(disk->path, value);
		} else if (!external && !strcmp(item, "readonly")) {
			if (!strcmp(value, "on") || !strcmp(value, "true"))
				disk->readonly = true;
			else if (!strcmp(value, "off") || !strcmp(value, "false"))
				disk->readonly = false;
			else
				return config_err(err, errlen, "--disk readonly=%s: use on or off",
						  value);
		} else if (!strcmp(item, "restart")) {
			if (strcmp(value, "always") && strcmp(value, "never"))
				return config_err(err, errlen, "%s restart=%s: use always or never",
						  flag, value);
			disk->no_restart = !strcmp(value, "never");
		} else if (!external && !strcmp(item, "id")) {
			if (!*value || strlen(value) >= sizeof(disk->id))
				return config_err(
				    err, errlen,
				    "--disk id=%s: an id is 1 to 20 characters (virtio-blk GET_ID)",
				    value);
			strcpy(disk->id, value);
		} else if (!external && (!strcmp(item, "bytes") || !strcmp(item, "ops"))) {
			/* isola-blk's --rate, as --net's rx-bytes=/rx-ops= */
			if (config_append_bucket(disk->rate, sizeof(disk->rate), item, value))
				return config_err(err, errlen, "--disk %s=%s is too long", item,
						  value);
		} else if (external && !strcmp(item, "socket")) {
			if (!*value || strlen(value) >= sizeof(disk->socket))
				return config_err(
				    err, errlen,
				    "--vhost-user-blk socket= needs a path shorter than %zu bytes",
				    sizeof(disk->socket));
			strcpy(disk->socket, value);
		} else {
			return config_err(err, errlen, "%s: unknown key '%s'; keys are %s", flag,
					  item,
					  external ? "socket, restart"
						   : "path, readonly, id, bytes, ops, restart");
		}
	}
	if (disk->rate[0]) {
		struct rate_limiter limiter;
		char why[160];

		if (rate_limiter_parse(disk->rate, &limiter, why, sizeof(why)))
			return config_err(err, errlen,
					  "--disk rate limiter: %s (each bucket is "
					  "SIZE:REFILL_MS[:ONE_TIME_BURST])",
					  why);
	}
	if (!external && !disk->path[0])
		return config_err(err, errlen, "--disk needs path=IMAGE");
	if (external && !disk->socket[0])
		return config_err(err, errlen, "--vhost-user-blk needs socket=PATH");
	return 0;
}

/* --rng=restart=always|never,bytes=B,ops=B (isola-rng's --rate). */
static int config_parse_rng(struct vm_config *cfg, const char *text, char *err, size_t errlen)
{
	char buf[256], *save = NULL, *item;
	struct rate_limiter limiter;
	char why[160];

	if (strlen(text) >= sizeof(buf))
		return config_err(err, errlen, "--rng value is too long");
	strcpy(buf, text);
	for (item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *value = strchr(item, '=');

		if (value)
			*value++ = '\0';
		if (value && !strcmp(item, "restart") &&
		    (!strcmp(value, "always") || !strcmp(value, "never"))) {
			cfg->rng_no_restart = !strcmp(value, "never");
		} else if (value && (!strcmp(item, "bytes") || !strcmp(item, "ops"))) {
			if (config_append_bucket(cfg->rng_rate, sizeof(cfg->rng_rate), item, value))
				return config_err(err, errlen, "--rng %s=%s is too long", item,
						  value);
		} else {
			return config_err(err, errlen,
					  "--rng=%s: the options are restart=always|never, "
					  "bytes=B and ops=B",
					  text);
		}
	}
	if (cfg->rng_rate[0] && rate_limiter_parse(cfg->rng_rate, &limiter, why, sizeof(why)))
		return config_err(err, errlen,
				  "--rng rate limiter: %s (each bucket is "
				  "SIZE:REFILL_MS[:ONE_TIME_BURST])",
				  why);
	return 0;
}

static void print_run_help(void)
{
	printf("Usage: isola run --kernel PATH [OPTION]...\n"
	       "Boot a virtual machine on /dev/kvm and run it until the guest powers off,\n"
	       "resets, exits through the debug-exit port, or the timeout fires.\n"
	       "\n"
	       "Options:\n"
	       "  -k, --kernel PATH      kernel to boot: a Linux bzImage (boot protocol 2.06+)\n"
	       "                         or an ELF with a PVH entry note (required)\n"
	       "  -i, --initrd PATH      initial ramdisk handed to the kernel\n"
	       "  -c, --cmdline STRING   kernel command line (default: empty)\n"
	       "  -m, --memory SIZE      guest RAM, e.g. 512M, 2G; a bare number is MiB\n"
	       "                         (default: 256M; min 2M; at most the host's RAM)\n"
	       "      --huge-pages none|2M\n"
	       "                         none (default): a memfd of 4 KiB pages, on 2 MiB\n"
	       "                         transparent huge pages where the host's\n"
	       "                         transparent_hugepage/shmem_enabled allows them;\n"
	       "                         2M: 2 MiB hugetlbfs pages, all reserved at start from\n"
	       "                         the host's pool (/proc/sys/vm/nr_hugepages); --memory\n"
	       "                         must then be a multiple of 2M\n"
	       "  -n, --cpus N           number of vCPUs, 1..%d (default: 1)\n"
	       "      --console MODE     stdio (default), none, or file:PATH for the guest's\n"
	       "                         serial console (COM1)\n"
	       "  -t, --timeout SECONDS  stop the guest after SECONDS (default: never)\n"
	       "      --disk path=IMG[,readonly=on][,id=NAME][,bytes=B][,ops=B][,restart=..]\n"
	       "                         a virtio-blk disk served by its own isola-blk\n"
	       "                         process (repeatable; up to %d devices of all kinds\n"
	       "                         fit on the PCI bus); bytes=/ops= limit its reads\n"
	       "                         and writes' bytes and its requests, B a token\n"
	       "                         bucket as for --net\n"
	       "      --vhost-user-blk socket=PATH[,restart=always|never]\n"
	       "                         a virtio-blk disk served by an external vhost-user\n"
	       "                         back-end listening on PATH (e.g. qemu-storage-daemon)\n"
	       "      --net tap=NAME[,mac=XX:XX:XX:XX:XX:XX][,queues=N][,mtu=N][,offloads=on|off]\n"
	       "            [,rx-bytes=B][,rx-ops=B][,tx-bytes=B][,tx-ops=B][,id=ID][,restart=..]\n"
	       "                         a virtio-net interface on the tap NAME (which must\n"
	       "                         exist in isola's network namespace), served by its own\n"
	       "                         isola-net process (repeatable, up to %d); queues=N\n"
	       "                         queue pairs (1..%d; N > 1 needs a multi_queue tap);\n"
	       "                         mac= default: random, locally administered; mtu=\n"
	       "                         default 1500; B is a token bucket SIZE:REFILL_MS\n"
	       "                         [:ONE_TIME_BURST] in bytes or frames (docs/net.md)\n"
	       "      --vhost-user-net socket=PATH[,mac=..][,mtu=N][,restart=always|never]\n"
	       "                         a virtio-net interface served by an external\n"
	       "                         vhost-user-net back-end listening on PATH\n"
	       "      --rng[=restart=always|never][,bytes=B][,ops=B]\n"
	       "                         a virtio-rng device served by an isola-rng process;\n"
	       "                         bytes=/ops= limit the entropy and the requests\n"
	       "      --vsock cid=N,uds=PATH[,restart=always|never]\n"
	       "                         a virtio-vsock device served by an isola-vsock\n"
	       "                         process: the guest's CID N (3 to 4294967294) and\n"
	       "                         Firecracker's hybrid host socket: isola-vsock listens\n"
	       "                         on the Unix socket PATH (its directory must exist;\n"
	       "                         at most %d bytes), a host process connects and\n"
	       "                         writes \"CONNECT <port>\\n\" to reach a guest listener;\n"
	       "                         the guest's connections to the host (CID 2) port P\n"
	       "                         go to the Unix socket PATH_P (docs/vsock.md)\n"
	       "      --fs tag=NAME,socket=PATH[,restart=always|never]\n"
	       "      --fs tag=NAME,dir=HOSTDIR[,cache=auto|always|none]\n"
	       "           [,sandbox=namespace|chroot][,restart=always|never]\n"
	       "                         a virtio-fs device the guest mounts with\n"
	       "                         'mount -t virtiofs NAME /mnt' (NAME: 1 to 36 bytes;\n"
	       "                         repeatable, up to %d): served by an external\n"
	       "                         vhost-user-fs back-end listening on PATH, or by\n"
	       "                         Debian's virtiofsd (package qemu-system-common) that\n"
	       "                         isola starts on HOSTDIR in its own sandbox; one\n"
	       "                         that dies is restarted, and the guest's mount\n"
	       "                         answers EIO until it is mounted again (docs/fs.md)\n"
	       "  A device server that dies is restarted (an external back-end is waited\n"
	       "  for) and in-flight requests are resubmitted; restart=never, or more than\n"
	       "  100 deaths in 10 s, or 5 failed starts in a row, leaves that device\n"
	       "  needing a reset instead (the VM keeps running).\n"
	       "      --on-reset exit|reboot\n"
	       "                         what a guest reset does: end isola with status 4\n"
	       "                         (default), or reboot the guest in place: a new VM\n"
	       "                         with the same kernel, on the same guest RAM (emptied)\n"
	       "                         and device servers, which its drivers set up again\n"
	       "      --no-seccomp       no seccomp filters on the VMM's threads (to debug with\n"
	       "                         strace or gdb; docs/security.md)\n"
	       "  -h, --help             show this help and exit\n"
	       "\n"
	       "Console: when stdin is a terminal it is put in raw mode; press Ctrl-A x to\n"
	       "stop the VM, Ctrl-A Ctrl-A to send Ctrl-A.  Ctrl-C goes to the guest.\n"
	       "\n"
	       "Exit status:\n"
	       "  0      the guest powered off (ACPI S5)\n"
	       "  2V+1   the guest wrote V to the debug-exit port 0x%x (QEMU isa-debug-exit)\n"
	       "  2      VMM error: bad option, unreadable file, KVM failure\n"
	       "  4      the guest reset the machine (i8042 or port 0xcf9), without\n"
	       "         --on-reset reboot\n"
	       "  6      guest crash: triple fault or KVM internal error\n"
	       "  8      the --timeout fired\n"
	       "  10     stopped by SIGINT/SIGTERM or Ctrl-A x\n"
	       "\n"
	       "SIGUSR2 upgrades every device server from its binary on disk while the\n"
	       "guest runs (docs/devices.md \"Live upgrade\").  SIGUSR1 logs each vCPU's\n"
	       "registers, pending events and the page walk of its RIP (the guest goes on).\n",
	       CONFIG_MAX_CPUS, CONFIG_MAX_DISKS, CONFIG_MAX_NETS, CONFIG_MAX_NET_QUEUES,
	       CONFIG_VSOCK_UDS_MAX, CONFIG_MAX_FS, ISOLA_DEBUG_EXIT_PORT);
}

static int config_check_memory(struct vm_config *cfg, const char *text, char *err, size_t errlen)
{
	long pages = sysconf(_SC_PHYS_PAGES);
	long page_size = sysconf(_SC_PAGESIZE);
	uint64_t host = pages > 0 && page_size > 0 ? (uint64_t)pages * (uint64_t)page_size : 0;
	int ret = config_parse_size(text, &cfg->memory_bytes);

	if (ret)
		return config_err(err, errlen,
				  "--memory '%s' is not a size; use a number with an optional K, "
				  "M, G or T suffix, e.g. 512M",
				  text);
	if (cfg->memory_bytes < LAYOUT_MIN_MEMORY)
		return config_err(err, errlen, "--memory %s is too small; the minimum is %llu MiB",
				  text, LAYOUT_MIN_MEMORY >> 20);
	if (cfg->memory_bytes % 4096)
		return config_err(err, errlen, "--memory %s is not a multiple of 4 KiB", text);
	if (host && cfg->memory_bytes > host)
		return config_err(
		    err, errlen,
		    "--memory %s is more than this host's %llu MiB of RAM; choose a smaller size",
		    text, (unsigned long long)(host >> 20));
	return 0;
}

int config_set_console(struct vm_config *cfg, const char *text, char *err, size_t errlen)
{
	if (!strcmp(text, "stdio")) {
		cfg->console = CONSOLE_STDIO;
	} else if (!strcmp(text, "none")) {
		cfg->console = CONSOLE_NONE;
	} else if (!strncmp(text, "file:", 5) && text[5]) {
		cfg->console = CONSOLE_FILE;
		cfg->console_path = text + 5;
	} else {
		return config_err(err, errlen,
				  "--console '%s' is not a console; use stdio, none or file:PATH",
				  text);
	}
	return 0;
}

/*
 * Did getopt_long reject the short letter `letter` rather than the word
 * `word` (argv[optind - 1])?  Inside a group like "-zk" optind stays on the
 * group, so `word` may be an older argument; the only long-option error with
 * a letter set is "--name=VALUE" for a flag that takes no value.
 */
static bool config_rejected_letter(const struct option *options, int letter, const char *word)
{
	size_t name_len;

	if (!letter || strncmp(word, "--", 2) || !strchr(word, '='))
		return letter != 0;
	name_len = strcspn(word + 2, "=");
	for (const struct option *o = options; o->name; o++)
		if (o->val == letter && o->has_arg == no_argument &&
		    !strncmp(o->name, word + 2, name_len))
			return false;
	return true;
}

int config_parse_run_args(struct vm_config *cfg, int argc, char **argv, char *err, size_t errlen)
{
	static const struct option options[] = {
	    {"kernel", required_argument, NULL, 'k'},
	    {"initrd", required_argument, NULL, 'i'},
	    {"cmdline", required_argument, NULL, 'c'},
	    {"memory", required_argument, NULL, 'm'},
	    {"huge-pages", required_argument, NULL, 'H'},
	    {"cpus", required_argument, NULL, 'n'},
	    {"console", required_argument, NULL, 'C'},
	    {"timeout", required_argument, NULL, 't'},
	    {"disk", required_argument, NULL, 'D'},
	    {"vhost-user-blk", required_argument, NULL, 'B'},
	    {"rng", optional_argument, NULL, 'R'},
	    {"net", required_argument, NULL, 'N'},
	    {"vhost-user-net", required_argument, NULL, 'U'},
	    {"vsock", required_argument, NULL, 'V'},
	    {"fs", required_argument, NULL, 'F'},
	    {"on-reset", required_argument, NULL, 'O'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int opt, ret;

	optind = 0; /* full re-initialisation: parsing may run more than once */
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":k:i:c:m:n:t:h", options, NULL)) != -1) {
		switch (opt) {
		case 'k':
			cfg->kernel_path = optarg;
			break;
		case 'i':
			cfg->initrd_path = optarg;
			break;
		case 'c':
			cfg->cmdline = optarg;
			break;
		case 'm':
			ret = config_check_memory(cfg, optarg, err, errlen);
			if (ret)
				return ret;
			break;
		case 'H':
			if (!strcasecmp(optarg, "none"))
				cfg->huge_pages = CONFIG_HUGE_PAGES_NONE;
			else if (!strcasecmp(optarg, "2M"))
				cfg->huge_pages = CONFIG_HUGE_PAGES_2M;
			else
				return config_err(err, errlen,
						  "--huge-pages '%s': use none (the default) or 2M",
						  optarg);
			break;
		case 'n':
			ret = parse_unsigned(optarg, CONFIG_MAX_CPUS, &cfg->nr_cpus);
			if (ret || cfg->nr_cpus == 0)
				return config_err(
				    err, errlen, "--cpus '%s' is %s; use a number from 1 to %d",
				    optarg, ret == -EINVAL ? "not a number" : "out of range",
				    CONFIG_MAX_CPUS);
			break;
		case 'C':
			ret = config_set_console(cfg, optarg, err, errlen);
			if (ret)
				return ret;
			break;
		case 't':
			if (parse_unsigned(optarg, 365u * 24 * 3600, &cfg->timeout_seconds) ||
			    cfg->timeout_seconds == 0)
				return config_err(
				    err, errlen,
				    "--timeout '%s' is not a number of seconds (1 or more)",
				    optarg);
			break;
		case 'D':
		case 'B':
			if (cfg->nr_disks == CONFIG_MAX_DISKS)
				return config_err(err, errlen, "too many disks; isola supports %d",
						  CONFIG_MAX_DISKS);
			ret = config_parse_disk(&cfg->disks[cfg->nr_disks], optarg, opt == 'B', err,
						errlen);
			if (ret)
				return ret;
			cfg->nr_disks++;
			break;
		case 'N':
		case 'U':
			if (cfg->nr_nets == CONFIG_MAX_NETS)
				return config_err(err, errlen,
						  "too many network interfaces; isola supports %d",
						  CONFIG_MAX_NETS);
			ret = config_parse_net(&cfg->nets[cfg->nr_nets], optarg, opt == 'U', err,
					       errlen);
			if (ret)
				return ret;
			config_net_finalize(&cfg->nets[cfg->nr_nets], cfg->nr_nets);
			cfg->nr_nets++;
			break;
		case 'R':
			cfg->rng = true;
			ret = optarg ? config_parse_rng(cfg, optarg, err, errlen) : 0;
			if (ret)
				return ret;
			break;
		case 'V':
			if (cfg->vsock.enabled)
				return config_err(
				    err, errlen,
				    "--vsock is given twice; a VM has one vsock device "
				    "(as in Firecracker)");
			if (config_parse_vsock(&cfg->vsock, optarg, err, errlen))
				return -EINVAL;
			break;
		case 'F':
			if (cfg->nr_fs == CONFIG_MAX_FS)
				return config_err(err, errlen,
						  "too many shared directories; isola supports %d",
						  CONFIG_MAX_FS);
			if (config_parse_fs(&cfg->fs[cfg->nr_fs], optarg, err, errlen))
				return -EINVAL;
			for (unsigned i = 0; i < cfg->nr_fs; i++)
				if (!strcmp(cfg->fs[i].tag, cfg->fs[cfg->nr_fs].tag))
					return config_err(err, errlen,
							  "--fs tag=%s is given twice; each shared "
							  "directory needs its own tag",
							  cfg->fs[i].tag);
			cfg->nr_fs++;
			break;
		case 'O':
			if (strcmp(optarg, "exit") && strcmp(optarg, "reboot"))
				return config_err(
				    err, errlen,
				    "--on-reset '%s': use exit (the default) or reboot", optarg);
			cfg->reboot_on_reset = !strcmp(optarg, "reboot");
			break;
		case 'h':
			print_run_help();
			return 1;
		case ':':
			return config_err(err, errlen,
					  "option %s needs a value; see 'isola run --help'",
					  argv[optind - 1]);
		default:
			if (config_rejected_letter(options, optopt, argv[optind - 1]))
				return config_err(err, errlen,
						  "unknown option '-%c'; see 'isola run --help'",
						  optopt);
			return config_err(err, errlen,
					  "unknown option '%s'; see 'isola run --help'",
					  argv[optind - 1]);
		}
	}
	if (optind < argc)
		return config_err(err, errlen,
				  "unexpected argument '%s'; options take the form --name VALUE, "
				  "see 'isola run --help'",
				  argv[optind]);
	if (!cfg->kernel_path)
		return config_err(err, errlen,
				  "no kernel given; use --kernel PATH (see 'isola run --help')");
	for (unsigned i = 0; i < cfg->nr_nets; i++)
		for (unsigned j = 0; j < i; j++) {
			if (!strcmp(cfg->nets[i].iface_id, cfg->nets[j].iface_id))
				return config_err(err, errlen,
						  "two network interfaces have the id '%s'",
						  cfg->nets[i].iface_id);
			if (cfg->nets[i].tap[0] && !strcmp(cfg->nets[i].tap, cfg->nets[j].tap))
				return config_err(err, errlen,
						  "--net tap=%s is given twice; each interface "
						  "needs its own tap",
						  cfg->nets[i].tap);
		}
	/* hugetlbfs maps whole pages only (lib/gmem.c) */
	if (cfg->huge_pages == CONFIG_HUGE_PAGES_2M && cfg->memory_bytes % (2ull << 20))
		return config_err(err, errlen,
				  "--memory is not a multiple of 2 MiB (%llu KiB), which "
				  "--huge-pages 2M needs; use e.g. --memory %lluM",
				  (unsigned long long)(cfg->memory_bytes >> 10),
				  (unsigned long long)((cfg->memory_bytes + (2ull << 20) - 1) >> 21)
				      << 1);
	return config_check_device_count(cfg, err, errlen);
}
