// SPDX-License-Identifier: MIT
/* Register map: Motorola MC146818A datasheet, "Address Map". */
#include "arch/x86/rtc.h"

#include <string.h>
#include <time.h>

#include "arch/x86/layout.h"

enum {
	RTC_SECONDS = 0x00,
	RTC_MINUTES = 0x02,
	RTC_HOURS = 0x04,
	RTC_DAY_OF_WEEK = 0x06,
	RTC_DAY_OF_MONTH = 0x07,
	RTC_MONTH = 0x08,
	RTC_YEAR = 0x09,
	RTC_STATUS_A = 0x0a,
	RTC_STATUS_B = 0x0b,
	RTC_STATUS_C = 0x0c,
	RTC_STATUS_D = 0x0d,
	CMOS_EXT_MEM_LOW = 0x34,  /* RAM above 16 MiB in 64 KiB units (SeaBIOS convention) */
	CMOS_EXT_MEM_HIGH = 0x35,
	RTC_CENTURY = 0x32,
	CMOS_HIGH_MEM_LOW = 0x5b, /* RAM above 4 GiB in 64 KiB units, 3 bytes */
};

#define STATUS_B_24H 0x02
#define STATUS_D_VALID 0x80

static uint8_t to_bcd(unsigned v)
{
	return (uint8_t)(((v / 10) % 10) << 4 | (v % 10));
}

void rtc_init(struct rtc *rtc, uint64_t ram_size)
{
	uint64_t above_16m = ram_size > (16ull << 20) ? ram_size - (16ull << 20) : 0;
	uint64_t above_4g = ram_size > LAYOUT_MMIO_HOLE_START ? ram_size - LAYOUT_MMIO_HOLE_START : 0;

	memset(rtc, 0, sizeof(*rtc));
	pthread_mutex_init(&rtc->lock, NULL);
	if (above_4g)
		above_16m = LAYOUT_MMIO_HOLE_START - (16ull << 20);
	above_16m >>= 16;
	if (above_16m > 0xffff)
		above_16m = 0xffff;
	above_4g >>= 16;
	rtc->cmos[RTC_STATUS_A] = 0x26; /* 32.768 kHz time base, 1024 Hz, UIP clear */
	rtc->cmos[RTC_STATUS_B] = STATUS_B_24H;
	rtc->cmos[RTC_STATUS_D] = STATUS_D_VALID;
	rtc->cmos[CMOS_EXT_MEM_LOW] = (uint8_t)above_16m;
	rtc->cmos[CMOS_EXT_MEM_HIGH] = (uint8_t)(above_16m >> 8);
	rtc->cmos[CMOS_HIGH_MEM_LOW] = (uint8_t)above_4g;
	rtc->cmos[CMOS_HIGH_MEM_LOW + 1] = (uint8_t)(above_4g >> 8);
	rtc->cmos[CMOS_HIGH_MEM_LOW + 2] = (uint8_t)(above_4g >> 16);
}

void rtc_destroy(struct rtc *rtc)
{
	pthread_mutex_destroy(&rtc->lock);
}

static uint8_t rtc_read(struct rtc *rtc, uint8_t index)
{
	time_t now = time(NULL);
	struct tm tm;

	if (index > RTC_YEAR && index != RTC_CENTURY)
		return index == RTC_STATUS_C ? 0 : rtc->cmos[index];
	gmtime_r(&now, &tm);
	switch (index) {
	case RTC_SECONDS:
		return to_bcd((unsigned)tm.tm_sec);
	case RTC_MINUTES:
		return to_bcd((unsigned)tm.tm_min);
	case RTC_HOURS:
		return to_bcd((unsigned)tm.tm_hour);
	case RTC_DAY_OF_WEEK:
		return to_bcd((unsigned)tm.tm_wday + 1);
	case RTC_DAY_OF_MONTH:
		return to_bcd((unsigned)tm.tm_mday);
	case RTC_MONTH:
		return to_bcd((unsigned)tm.tm_mon + 1);
	case RTC_YEAR:
		return to_bcd((unsigned)(tm.tm_year % 100));
	case RTC_CENTURY:
		return to_bcd((unsigned)(1900 + tm.tm_year) / 100);
	default: /* alarm registers */
		return rtc->cmos[index];
	}
}

void rtc_access(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct rtc *rtc = opaque;

	(void)len;
	pthread_mutex_lock(&rtc->lock);
	if (offset == 0) {
		if (is_write)
			rtc->index = data[0] & 0x7f; /* bit 7 is the NMI mask */
		else
			data[0] = 0xff;
	} else if (is_write) {
		/* The clock follows the host; the guest may use the CMOS RAM and
		 * the alarm/status-B bits but not set the time. */
		if (rtc->index > RTC_STATUS_D || rtc->index == RTC_STATUS_B)
			rtc->cmos[rtc->index] = rtc->index == RTC_STATUS_B ? (uint8_t)(data[0] | STATUS_B_24H) & ~0x04 : data[0];
	} else {
		data[0] = rtc_read(rtc, rtc->index);
	}
	pthread_mutex_unlock(&rtc->lock);
}
