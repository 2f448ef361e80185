/* SPDX-License-Identifier: MIT */
/* What legacy devices ask of the machine: reset or power off. */
#ifndef ISOLA_ARCH_X86_PLATFORM_EVENTS_H
#define ISOLA_ARCH_X86_PLATFORM_EVENTS_H

struct platform_events {
	void (*reset)(void *opaque, const char *source);
	void (*poweroff)(void *opaque, const char *source);
	void *opaque;
};

#endif
