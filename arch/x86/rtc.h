/* SPDX-License-Identifier: MIT */
/*
 * MC146818 RTC + CMOS RAM at ports 0x70/0x71: the host's UTC time in BCD,
 * 24-hour mode, never "update in progress", and the CMOS memory-size bytes
 * firmware conventionally fills.  Enough for Linux's rtc-cmos and
 * mach_get_cmos_time().
 */
#ifndef ISOLA_ARCH_X86_RTC_H
#define ISOLA_ARCH_X86_RTC_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct rtc {
	pthread_mutex_t lock;
	uint8_t index;
	uint8_t cmos[128];
};

void rtc_init(struct rtc *rtc, uint64_t ram_size);
void rtc_destroy(struct rtc *rtc);
/* Port handler for 0x70..0x71 (bus_access_fn). */
void rtc_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

#endif
