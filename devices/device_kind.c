// SPDX-License-Identifier: MIT
#include "devices/device_kind.h"

#include <errno.h>
#include <string.h>

#include "isola/virtio.h"

/* PCI class codes (PCI Code and ID Assignment): mass storage "other", and
 * "unassigned class" for a device without one. */
#define PCI_CLASS_STORAGE_OTHER 0x0180
#define PCI_CLASS_OTHER 0xff00

/* virtio 1.2 §5.2.6.2: without VIRTIO_BLK_F_MQ the driver uses one queue,
 * whatever GET_QUEUE_NUM said. */
static int blk_fixup(const struct device_kind *kind, uint64_t backend_features,
		     uint16_t *num_queues, uint8_t *config, uint32_t config_size, char *err,
		     size_t errlen)
{
	(void)kind;
	(void)config;
	(void)config_size;
	(void)err;
	(void)errlen;
	if (!(backend_features & (1ull << VIRTIO_BLK_F_MQ)))
		*num_queues = 1;
	return 0;
}

const struct device_kind device_kinds[] = {
    {
	.name = "blk",
	.virtio_id = VIRTIO_ID_BLOCK,
	.pci_class = PCI_CLASS_STORAGE_OTHER,
	.options = {{"--image", true},
		    {"--readonly", false},
		    {"--id", true},
		    {"--queues", true},
		    {"--poll-us", true}},
	/* struct virtio_blk_config through write_zeroes_may_unmap, §5.2.4 */
	.config_size = 60,
	.config_owner = DEVICE_CONFIG_BACKEND,
	.fixup = blk_fixup,
    },
    {
	.name = "rng",
	.virtio_id = VIRTIO_ID_RNG,
	.pci_class = PCI_CLASS_OTHER,
	.options = {{"--rate", true}},
	.config_size = 0, /* §5.4.4: no config */
	.config_owner = DEVICE_CONFIG_NONE,
    },
};

const unsigned device_kinds_count = sizeof(device_kinds) / sizeof(device_kinds[0]);

const struct device_kind *device_kind_by_name(const char *name)
{
	for (unsigned i = 0; name && i < device_kinds_count; i++)
		if (!strcmp(device_kinds[i].name, name))
			return &device_kinds[i];
	return NULL;
}

const struct device_kind *device_kind_by_virtio_id(uint16_t virtio_id)
{
	for (unsigned i = 0; i < device_kinds_count; i++)
		if (device_kinds[i].virtio_id == virtio_id)
			return &device_kinds[i];
	return NULL;
}

const struct device_kind_option *device_kind_option(const struct device_kind *kind,
						    const char *option)
{
	for (unsigned i = 0; kind && option && i < DEVICE_KIND_MAX_OPTIONS && kind->options[i].name;
	     i++)
		if (!strcmp(kind->options[i].name, option))
			return &kind->options[i];
	return NULL;
}
