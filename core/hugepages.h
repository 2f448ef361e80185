/* SPDX-License-Identifier: MIT */
/*
 * The host's huge-page settings as they concern guest RAM (lib/gmem.h):
 * whether shmem may use transparent huge pages (the default backing), and
 * what to do when the hugetlb pool is too small for --huge-pages 2M.  Both
 * read /sys and /proc; inside --jail, where neither exists, the hint stays
 * silent and the pool message has no figures.
 */
#ifndef ISOLA_CORE_HUGEPAGES_H
#define ISOLA_CORE_HUGEPAGES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"

/* Below this much guest RAM the hint is not worth a line: test guests and
 * unikernels touch little memory; a Linux guest is given more. */
#define HUGEPAGES_HINT_MIN_MEMORY (128ull << 20)

/*
 * The setting that decides whether shmem may allocate 2 MiB transparent huge
 * pages: /sys/kernel/mm/transparent_hugepage/hugepages-2048kB/shmem_enabled
 * unless it says "inherit" (or is absent, before Linux 6.11), else the
 * top-level shmem_enabled; "deny" at the top level wins over both.  Copies
 * the chosen word into setting and names its file in *path; false if the
 * top-level file cannot be read (no THP in this kernel, or --jail).
 */
bool hugepages_shmem_setting(char *setting, size_t len, const char **path);

/*
 * One hint line on stderr (log_info) when guest RAM will be on 4 KiB pages
 * although it could have 2 MiB ones: shmem THP is never/deny, no hugetlb
 * pages were asked for, and the guest has HUGEPAGES_HINT_MIN_MEMORY or more.
 */
void hugepages_hint(const struct vm_config *cfg);

/*
 * After gmem_create(GMEM_BACKING_HUGETLB_2M) failed with ret: one sentence
 * in err saying what to do (for -ENOMEM, the nr_hugepages value that would
 * hold ram_size more bytes).  Returns ret.
 */
int hugepages_error(int ret, uint64_t ram_size, char *err, size_t errlen);

#endif
