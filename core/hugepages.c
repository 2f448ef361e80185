// SPDX-License-Identifier: MIT
#define _GNU_SOURCE
#include "core/hugepages.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/gmem.h"
#include "lib/log.h"

#define THP_DIR "/sys/kernel/mm/transparent_hugepage/"
#define HUGETLB_2M_DIR "/sys/kernel/mm/hugepages/hugepages-2048kB/"

/* Plain open/read: what the reboot path's seccomp list allows (core/seccomp.c). */
static int read_text(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -EIO;
	buf[n] = '\0';
	return 0;
}

/* The word in brackets: "always within_size advise [never] deny force". */
static bool read_choice(const char *path, char *word, size_t len)
{
	char buf[256], *open, *close;

	if (read_text(path, buf, sizeof(buf)))
		return false;
	open = strchr(buf, '[');
	close = open ? strchr(open, ']') : NULL;
	if (!close)
		return false;
	snprintf(word, len, "%.*s", (int)(close - open - 1), open + 1);
	return true;
}

bool hugepages_shmem_setting(char *setting, size_t len, const char **path)
{
	char top[32], size[32];

	if (!read_choice(THP_DIR "shmem_enabled", top, sizeof(top)))
		return false;
	/* Measured on Linux 6.18 with a memfd mapped MADV_HUGEPAGE: top never
	 * + 2048kB advise gives PMD mappings, top advise + 2048kB never none. */
	if (strcmp(top, "deny") &&
	    read_choice(THP_DIR "hugepages-2048kB/shmem_enabled", size, sizeof(size)) &&
	    strcmp(size, "inherit")) {
		snprintf(setting, len, "%s", size);
		*path = THP_DIR "hugepages-2048kB/shmem_enabled";
	} else {
		snprintf(setting, len, "%s", top);
		*path = THP_DIR "shmem_enabled";
	}
	return true;
}

void hugepages_hint(const struct vm_config *cfg)
{
	const char *path;
	char setting[32];

	if (cfg->huge_pages != CONFIG_HUGE_PAGES_NONE ||
	    cfg->memory_bytes < HUGEPAGES_HINT_MIN_MEMORY ||
	    !hugepages_shmem_setting(setting, sizeof(setting), &path) ||
	    (strcmp(setting, "never") && strcmp(setting, "deny")))
		return;
	log_info("guest RAM is on 4 KiB pages (%s is %s): for 2 MiB pages run 'echo advise > %s' "
		 "as root, or use --huge-pages 2M (machine-config huge_pages \"2M\")",
		 path, setting, path);
}

static long read_number(const char *path)
{
	char buf[32];

	if (read_text(path, buf, sizeof(buf)))
		return -1;
	return strtol(buf, NULL, 10);
}

/* Where `echo N >` sets the pool of 2 MiB pages: /proc/sys/vm/nr_hugepages
 * is the default huge page size's pool (Hugepagesize in /proc/meminfo). */
static const char *pool_path(void)
{
	char buf[4096], *line;

	if (!read_text("/proc/meminfo", buf, sizeof(buf)) &&
	    (line = strstr(buf, "Hugepagesize:")) && strtol(line + 13, NULL, 10) == 2048)
		return "/proc/sys/vm/nr_hugepages";
	return HUGETLB_2M_DIR "nr_hugepages";
}

int hugepages_error(int ret, uint64_t ram_size, char *err, size_t errlen)
{
	static const char without[] = "or run without (--huge-pages none, huge_pages \"None\")";
	long total = read_number(HUGETLB_2M_DIR "nr_hugepages");
	long free_pages = read_number(HUGETLB_2M_DIR "free_hugepages");
	long reserved = read_number(HUGETLB_2M_DIR "resv_hugepages");
	long need = (long)(ram_size / GMEM_HUGE_PAGE_SIZE);
	long available = free_pages - reserved < 0 ? 0 : free_pages - reserved;

	if (ret == -EINVAL && ram_size % GMEM_HUGE_PAGE_SIZE)
		snprintf(err, errlen,
			 "guest RAM on 2 MiB huge pages: %" PRIu64
			 " KiB is not a multiple of 2 MiB; choose a size that is",
			 ram_size >> 10);
	else if (ret != -ENOMEM)
		snprintf(err, errlen,
			 "guest RAM on 2 MiB huge pages: memfd on hugetlbfs: %s; does this kernel "
			 "have 2 MiB huge pages (%s)? %s",
			 strerror(-ret), HUGETLB_2M_DIR, without);
	else if (total < 0 || free_pages < 0 || reserved < 0)
		snprintf(err, errlen,
			 "guest RAM on 2 MiB huge pages: the host's pool cannot hold %" PRIu64
			 " MiB (%ld pages); enlarge it as root (%s), %s",
			 ram_size >> 20, need, pool_path(), without);
	else if (available >= need)
		snprintf(err, errlen,
			 "guest RAM on 2 MiB huge pages: %ld free pages would hold %" PRIu64
			 " MiB, but reserving them failed (a hugetlb cgroup limit?); %s",
			 available, ram_size >> 20, without);
	else
		snprintf(
		    err, errlen,
		    "guest RAM on 2 MiB huge pages: %" PRIu64 " MiB needs %ld pages, the "
		    "host's pool has %ld free; as root run 'echo %ld > %s' and start again, %s",
		    ram_size >> 20, need, available, total + need - available, pool_path(),
		    without);
	return ret;
}
