/* SPDX-License-Identifier: MIT */
/*
 * The host's huge-page settings as they concern guest RAM (lib/gmem.h):
 * what to do when the hugetlb pool is too small for --huge-pages 2M.  Reads
 * /sys and /proc; inside --jail, where neither exists, the message has no
 * figures.
 */
#ifndef ISOLA_CORE_HUGEPAGES_H
#define ISOLA_CORE_HUGEPAGES_H

#include <stddef.h>
#include <stdint.h>

/*
 * After gmem_create(GMEM_BACKING_HUGETLB_2M) failed with ret: one sentence
 * in err saying what to do (for -ENOMEM, the nr_hugepages value that would
 * hold ram_size more bytes).  Returns ret.
 */
int hugepages_error(int ret, uint64_t ram_size, char *err, size_t errlen);

#endif
