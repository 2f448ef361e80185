/* SPDX-License-Identifier: MIT */
/* The test guests' virtio-pci driver: see virtio.h. */
#include "virtio.h"

#define PCI_COMMAND 0x04
#define PCI_COMMAND_MEMORY 0x0002
#define PCI_COMMAND_MASTER 0x0004
#define PCI_COMMAND_INTX_DISABLE 0x0400
#define PCI_BAR0 0x10
#define PCI_CAP_VENDOR 0x09
#define MSIX_ENABLE 0x8000u
#define MSIX_FUNCTION_MASK 0x4000u
#define BAR_WINDOW_START 0xc0000000ull
#define BAR_WINDOW_END 0xfec00000ull

/* virtio 1.2 §4.1.4: cfg_type of the vendor capabilities. */
enum { CAP_COMMON = 1, CAP_NOTIFY = 2, CAP_ISR = 3, CAP_DEVICE = 4 };

static inline void barrier(void)
{
	__asm__ volatile("" ::: "memory");
}

/* Full fence without SSE2's MFENCE. */
static inline void fence(void)
{
	__asm__ volatile("lock; addl $0, (%%rsp)" ::: "memory", "cc");
}

static inline uint8_t rd8(uint64_t a) { return *(volatile uint8_t *)phys_ptr(a); }
static inline uint16_t rd16(uint64_t a) { return *(volatile uint16_t *)phys_ptr(a); }
static inline uint32_t rd32(uint64_t a) { return *(volatile uint32_t *)phys_ptr(a); }
static inline void wr8(uint64_t a, uint8_t v) { *(volatile uint8_t *)phys_ptr(a) = v; }
static inline void wr16(uint64_t a, uint16_t v) { *(volatile uint16_t *)phys_ptr(a) = v; }
static inline void wr32(uint64_t a, uint32_t v) { *(volatile uint32_t *)phys_ptr(a) = v; }

/* ---- DMA memory --------------------------------------------------------- */

extern char _end[];
static uint64_t dma_next, dma_limit;

void dma_init(const struct boot_info *info)
{
	uint64_t end = (uint64_t)_end;

	for (unsigned i = 0; i < info->nr_mem; i++) {
		const struct boot_mem_range *r = &info->mem[i];

		if (r->type == 1 && r->addr <= end && end < r->addr + r->size) {
			dma_limit = r->addr + r->size;
			if (dma_limit > 0xc0000000ull)
				dma_limit = 0xc0000000ull;
		}
	}
}

void dma_zero(void *p, uint64_t size)
{
	__asm__ volatile("rep stosb" : "+D"(p), "+c"(size) : "a"(0) : "memory");
}

void *dma_alloc(uint64_t size, uint64_t align)
{
	uint64_t at;

	if (!dma_next)
		dma_next = ((uint64_t)_end + 0xffff) & ~0xffffull;
	if (!dma_limit)
		dma_limit = (uint64_t)_end + (16ull << 20);
	at = (dma_next + align - 1) & ~(align - 1);
	if (at + size > dma_limit)
		test_abort("dma_alloc", "out of memory: %lx bytes at %lx, limit %lx", size, at,
			   dma_limit);
	dma_next = at + size;
	dma_zero(phys_ptr(at), size);
	return phys_ptr(at);
}

/* ---- stopwatch ---------------------------------------------------------- */

void stopwatch_start(struct stopwatch *sw)
{
	sw->last = pmtimer_read();
	sw->us = 0;
}

uint64_t stopwatch_us(struct stopwatch *sw)
{
	uint32_t now = pmtimer_read();

	if (!pmtimer_present())
		return sw->us += 10; /* no clock: count polls as 10 µs each */
	sw->us += ((now - sw->last) & 0xffffffu) * 1000000ull / 3579545ull;
	sw->last = now;
	return sw->us;
}

void virtio_delay_us(uint64_t us)
{
	struct stopwatch sw;

	stopwatch_start(&sw);
	while (stopwatch_us(&sw) < us) {
		cpu_sti();
		(void)pmtimer_read(); /* a VM exit inside the interrupt window */
		cpu_cli();
	}
}

/* ---- BARs --------------------------------------------------------------- */

struct range {
	uint64_t start, end;
};

static struct range bar_taken[64];
static unsigned bar_taken_count;

static int bar_overlaps(uint64_t start, uint64_t end)
{
	uint64_t ecam = acpi_mcfg_base();

	if (ecam && start < ecam + 0x10000000ull && ecam < end)
		return 1;
	for (unsigned i = 0; i < bar_taken_count; i++)
		if (start < bar_taken[i].end && bar_taken[i].start < end)
			return 1;
	return 0;
}

static void bar_take(uint64_t start, uint64_t size)
{
	if (bar_taken_count < ARRAY_SIZE(bar_taken))
		bar_taken[bar_taken_count++] = (struct range){start, start + size};
}

/* Every memory BAR already decoded on bus 0, so a new one avoids them. */
static void bar_scan_bus0(void)
{
	static int scanned;

	if (scanned)
		return;
	scanned = 1;
	for (unsigned slot = 0; slot < 32; slot++) {
		if ((pci_cfg_read32(0, slot, 0, 0) & 0xffff) == 0xffff)
			continue;
		for (unsigned fn = 0; fn < pci_functions(0, slot); fn++) {
			if ((pci_cfg_read32(0, slot, fn, 0) & 0xffff) == 0xffff ||
			    (pci_cfg_read32(0, slot, fn, 0x0c) >> 16 & 0x7f) != 0)
				continue;
			for (unsigned i = 0; i < 6; i++) {
				uint32_t lo = pci_cfg_read32(0, slot, fn, PCI_BAR0 + 4 * i);
				uint64_t base = lo & ~0xfull;

				if (lo & 1)
					continue;
				if ((lo >> 1 & 3) == 2 && i < 5)
					base |= (uint64_t)pci_cfg_read32(0, slot, fn, PCI_BAR0 + 4 * ++i) << 32;
				if (base)
					bar_take(base, 0x1000); /* size unknown: at least a page */
			}
		}
	}
}

static uint64_t bar_size(struct virtio_dev *dev, unsigned i, int is64)
{
	unsigned off = PCI_BAR0 + 4 * i;
	uint32_t lo = pci_cfg_read32(dev->bus, dev->slot, dev->fn, off), hi = 0, mlo, mhi = 0xffffffffu;
	uint64_t mask;

	if (is64)
		hi = pci_cfg_read32(dev->bus, dev->slot, dev->fn, off + 4);
	pci_cfg_write32(dev->bus, dev->slot, dev->fn, off, 0xffffffffu);
	mlo = pci_cfg_read32(dev->bus, dev->slot, dev->fn, off);
	pci_cfg_write32(dev->bus, dev->slot, dev->fn, off, lo);
	if (is64) {
		pci_cfg_write32(dev->bus, dev->slot, dev->fn, off + 4, 0xffffffffu);
		mhi = pci_cfg_read32(dev->bus, dev->slot, dev->fn, off + 4);
		pci_cfg_write32(dev->bus, dev->slot, dev->fn, off + 4, hi);
	}
	mask = ((uint64_t)mhi << 32) | (mlo & ~0xfu);
	return mask ? ~mask + 1 : 0;
}

/* Map BAR i: keep where firmware put it if it is below 4 GiB (the identity
 * map's reach), else give it an address in the PCI window. */
static int virtio_map_bar(struct virtio_dev *dev, unsigned i)
{
	unsigned off = PCI_BAR0 + 4 * i;
	uint32_t lo, cmd;
	uint64_t base, size;
	int is64;

	if (i > 5)
		return -1;
	if (dev->bar[i])
		return 0;
	lo = pci_cfg_read32(dev->bus, dev->slot, dev->fn, off);
	if (lo & 1)
		return -1; /* I/O BAR: modern virtio structures are in memory */
	is64 = (lo >> 1 & 3) == 2;
	base = lo & ~0xfull;
	if (is64)
		base |= (uint64_t)pci_cfg_read32(dev->bus, dev->slot, dev->fn, off + 4) << 32;
	if (base && base + 0x1000 <= 0x100000000ull) {
		dev->bar[i] = base;
		return 0;
	}
	cmd = pci_cfg_read32(dev->bus, dev->slot, dev->fn, PCI_COMMAND);
	pci_cfg_write32(dev->bus, dev->slot, dev->fn, PCI_COMMAND, cmd & ~PCI_COMMAND_MEMORY & 0xffff);
	size = bar_size(dev, i, is64);
	if (!size || size > 0x10000000ull)
		return -1;
	bar_scan_bus0();
	for (base = BAR_WINDOW_START; base + size <= BAR_WINDOW_END; base += size) {
		if (bar_overlaps(base, base + size))
			continue;
		pci_cfg_write32(dev->bus, dev->slot, dev->fn, off, (uint32_t)base | (lo & 0xf));
		if (is64)
			pci_cfg_write32(dev->bus, dev->slot, dev->fn, off + 4, 0);
		bar_take(base, size);
		dev->bar[i] = base;
		console_printf("virtio %02x:%02x.%x: BAR%u assigned at %lx (%lx bytes)\n", dev->bus,
			       dev->slot, dev->fn, i, base, size);
		pci_cfg_write32(dev->bus, dev->slot, dev->fn, PCI_COMMAND, cmd & 0xffff);
		return 0;
	}
	return -1;
}

/* ---- discovery ---------------------------------------------------------- */

static int virtio_walk_caps(struct virtio_dev *dev)
{
	unsigned off = pci_cfg_read32(dev->bus, dev->slot, dev->fn, 0x34) & 0xfc;
	int have = 0;

	for (unsigned hops = 0; off >= 0x40 && hops < 48; hops++) {
		uint32_t w0 = pci_cfg_read32(dev->bus, dev->slot, dev->fn, off);
		unsigned id = w0 & 0xff, type = w0 >> 24;

		if (id == PCI_CAP_MSIX && !dev->msix_cap) {
			uint32_t table = pci_cfg_read32(dev->bus, dev->slot, dev->fn, off + 4);

			if (virtio_map_bar(dev, table & 7) == 0) {
				dev->msix_cap = off;
				dev->msix_vectors = (w0 >> 16 & 0x7ff) + 1;
				dev->msix_table = dev->bar[table & 7] + (table & ~7u);
			}
		} else if (id == PCI_CAP_VENDOR && type >= CAP_COMMON && type <= CAP_DEVICE &&
			   !(have & (1 << type))) {
			unsigned bar = pci_cfg_read32(dev->bus, dev->slot, dev->fn, off + 4) & 0xff;
			uint32_t offset = pci_cfg_read32(dev->bus, dev->slot, dev->fn, off + 8);
			uint32_t length = pci_cfg_read32(dev->bus, dev->slot, dev->fn, off + 12);
			uint64_t at;

			if (virtio_map_bar(dev, bar) == 0) {
				at = dev->bar[bar] + offset;
				have |= 1 << type;
				if (type == CAP_COMMON)
					dev->common = at;
				else if (type == CAP_ISR)
					dev->isr = at;
				else if (type == CAP_DEVICE) {
					dev->device_cfg = at;
					dev->device_cfg_len = length;
				} else {
					dev->notify = at;
					dev->notify_multiplier =
						pci_cfg_read32(dev->bus, dev->slot, dev->fn, off + 16);
				}
			}
		}
		off = w0 >> 8 & 0xfc;
	}
	if (!(have & (1 << CAP_COMMON)) || !(have & (1 << CAP_NOTIFY)) || !(have & (1 << CAP_ISR)))
		return -1;
	return 0;
}

unsigned virtio_find(uint16_t type, struct virtio_dev *devs, unsigned max)
{
	unsigned found = 0;

	for (unsigned slot = 0; slot < 32 && found < max; slot++) {
		if ((pci_cfg_read32(0, slot, 0, 0) & 0xffff) == 0xffff)
			continue;
		for (unsigned fn = 0; fn < pci_functions(0, slot) && found < max; fn++) {
			uint32_t id = pci_cfg_read32(0, slot, fn, 0);
			uint16_t vendor = id & 0xffff, device = id >> 16;
			struct virtio_dev *dev = &devs[found];
			uint32_t cmd;

			if (vendor != VIRTIO_PCI_VENDOR || device < VIRTIO_PCI_DEVICE_MODERN ||
			    device > VIRTIO_PCI_DEVICE_MODERN + 0x3f)
				continue;
			if (type && device != VIRTIO_PCI_DEVICE_MODERN + type)
				continue;
			dma_zero(dev, sizeof(*dev));
			dev->bus = 0;
			dev->slot = slot;
			dev->fn = fn;
			dev->type = device - VIRTIO_PCI_DEVICE_MODERN;
			if (virtio_walk_caps(dev)) {
				test_fail("virtio capabilities", "%02x:%02x.%x: common/notify/ISR missing",
					  0, slot, fn);
				continue;
			}
			cmd = pci_cfg_read32(0, slot, fn, PCI_COMMAND) & 0xffff;
			pci_cfg_write32(0, slot, fn, PCI_COMMAND,
					cmd | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER |
						PCI_COMMAND_INTX_DISABLE);
			console_printf("virtio %02x:%02x.%x: type %u, common %lx notify %lx (x%u) isr %lx "
				       "device %lx (%u bytes), msix %u vectors at %lx\n",
				       0, slot, fn, dev->type, dev->common, dev->notify,
				       dev->notify_multiplier, dev->isr, dev->device_cfg,
				       dev->device_cfg_len, dev->msix_vectors, dev->msix_table);
			found++;
		}
	}
	return found;
}

/* ---- common configuration ---------------------------------------------- */

uint8_t virtio_common_read8(struct virtio_dev *dev, unsigned off) { return rd8(dev->common + off); }
uint16_t virtio_common_read16(struct virtio_dev *dev, unsigned off) { return rd16(dev->common + off); }
uint32_t virtio_common_read32(struct virtio_dev *dev, unsigned off) { return rd32(dev->common + off); }
void virtio_common_write8(struct virtio_dev *dev, unsigned off, uint8_t v) { wr8(dev->common + off, v); }
void virtio_common_write16(struct virtio_dev *dev, unsigned off, uint16_t v) { wr16(dev->common + off, v); }
void virtio_common_write32(struct virtio_dev *dev, unsigned off, uint32_t v) { wr32(dev->common + off, v); }

uint8_t virtio_status(struct virtio_dev *dev)
{
	return virtio_common_read8(dev, VIRTIO_COMMON_STATUS);
}

void virtio_set_status(struct virtio_dev *dev, uint8_t status)
{
	virtio_common_write8(dev, VIRTIO_COMMON_STATUS, status);
}

int virtio_needs_reset(struct virtio_dev *dev)
{
	return (virtio_status(dev) & VIRTIO_STATUS_NEEDS_RESET) != 0;
}

int virtio_reset(struct virtio_dev *dev)
{
	struct stopwatch sw;

	virtio_set_status(dev, 0);
	stopwatch_start(&sw);
	/* §4.1.4.3.2: reset is done when device_status reads back 0. */
	while (virtio_status(dev) != 0)
		if (stopwatch_us(&sw) > 2000000)
			return -1;
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
		dev->vq[q].size = 0;
	return 0;
}

uint64_t virtio_device_features(struct virtio_dev *dev)
{
	uint64_t f;

	virtio_common_write32(dev, VIRTIO_COMMON_DFSELECT, 0);
	f = virtio_common_read32(dev, VIRTIO_COMMON_DF);
	virtio_common_write32(dev, VIRTIO_COMMON_DFSELECT, 1);
	f |= (uint64_t)virtio_common_read32(dev, VIRTIO_COMMON_DF) << 32;
	return f;
}

int virtio_negotiate(struct virtio_dev *dev, uint64_t wanted)
{
	uint64_t offered = virtio_device_features(dev);

	if (!(offered & VIRTIO_BIT(VIRTIO_F_VERSION_1))) {
		test_fail("virtio features", "VERSION_1 not offered (%lx)", offered);
		return -1;
	}
	dev->features = offered & (wanted | VIRTIO_BIT(VIRTIO_F_VERSION_1));
	virtio_common_write32(dev, VIRTIO_COMMON_GFSELECT, 0);
	virtio_common_write32(dev, VIRTIO_COMMON_GF, (uint32_t)dev->features);
	virtio_common_write32(dev, VIRTIO_COMMON_GFSELECT, 1);
	virtio_common_write32(dev, VIRTIO_COMMON_GF, (uint32_t)(dev->features >> 32));
	virtio_set_status(dev, virtio_status(dev) | VIRTIO_STATUS_FEATURES_OK);
	/* §3.1.1 step 6: FEATURES_OK must read back set. */
	if (!(virtio_status(dev) & VIRTIO_STATUS_FEATURES_OK)) {
		test_fail("virtio features", "FEATURES_OK not accepted for %lx", dev->features);
		return -1;
	}
	console_printf("virtio %02x:%02x.%x: features offered %lx, accepted %lx\n", dev->bus,
		       dev->slot, dev->fn, offered, dev->features);
	return 0;
}

/* ---- interrupts --------------------------------------------------------- */

#define VIRTIO_FIRST_VECTOR 0x60
#define VIRTIO_LAST_VECTOR 0xef

static struct {
	struct virtio_dev *dev;
	int queue; /* -1: configuration change */
} irq_owner[256];
static unsigned next_cpu_vector = VIRTIO_FIRST_VECTOR;

static void virtio_irq(struct idt_frame *frame)
{
	unsigned v = frame->vector & 0xff;

	if (irq_owner[v].dev) {
		if (irq_owner[v].queue < 0)
			irq_owner[v].dev->config_irqs++;
		else
			irq_owner[v].dev->vq[irq_owner[v].queue].irqs++;
	}
	lapic_eoi();
}

static uint8_t virtio_alloc_vector(struct virtio_dev *dev, int queue)
{
	unsigned v = next_cpu_vector;

	if (v > VIRTIO_LAST_VECTOR)
		test_abort("virtio", "out of interrupt vectors");
	next_cpu_vector++;
	irq_owner[v].dev = dev;
	irq_owner[v].queue = queue;
	idt_set_handler(v, virtio_irq);
	return (uint8_t)v;
}

static void msix_entry(struct virtio_dev *dev, unsigned entry, uint8_t vector)
{
	uint64_t e = dev->msix_table + 16ull * entry;

	wr32(e + 0, (uint32_t)msi_address(lapic_id()));
	wr32(e + 4, 0);
	wr32(e + 8, msi_data(vector));
	wr32(e + 12, 0); /* unmasked */
}

void virtio_msix_enable(struct virtio_dev *dev)
{
	uint32_t w0;

	lapic_enable();
	if (!dev->config_irq_vector)
		dev->config_irq_vector = virtio_alloc_vector(dev, -1);
	msix_entry(dev, 0, dev->config_irq_vector);
	w0 = pci_cfg_read32(dev->bus, dev->slot, dev->fn, dev->msix_cap);
	w0 = (w0 | MSIX_ENABLE << 16) & ~(MSIX_FUNCTION_MASK << 16);
	pci_cfg_write32(dev->bus, dev->slot, dev->fn, dev->msix_cap, w0);
	virtio_common_write16(dev, VIRTIO_COMMON_MSIX, 0);
	if (virtio_common_read16(dev, VIRTIO_COMMON_MSIX) != 0)
		test_fail("virtio msix", "config vector 0 not accepted");
}

/* ---- queues ------------------------------------------------------------- */

int virtio_setup_queue(struct virtio_dev *dev, unsigned index, unsigned size, int exact,
		       int use_msix)
{
	if (virtio_setup_queue_rings(dev, index, size, exact, use_msix))
		return -1;
	virtio_common_write16(dev, VIRTIO_COMMON_Q_ENABLE, 1);
	return 0;
}

int virtio_setup_queue_rings(struct virtio_dev *dev, unsigned index, unsigned size, int exact,
			     int use_msix)
{
	struct virtq *vq = &dev->vq[index];
	uint16_t max;
	uint64_t desc_bytes, avail_bytes, used_bytes;
	uint8_t *mem;

	if (index >= VIRTIO_MAX_QUEUES)
		return -1;
	virtio_common_write16(dev, VIRTIO_COMMON_Q_SELECT, (uint16_t)index);
	max = virtio_common_read16(dev, VIRTIO_COMMON_Q_SIZE);
	if (max == 0) {
		test_fail("virtio queue", "queue %u not available", index);
		return -1;
	}
	if (!exact && size > max)
		size = max;
	if (size > VIRTQ_MAX_SIZE && !exact)
		size = VIRTQ_MAX_SIZE;
	dma_zero(vq, sizeof(*vq));
	vq->dev = dev;
	vq->index = (uint16_t)index;
	vq->size = (uint16_t)size;
	/* §2.7: descriptor table 16-byte, avail 2-byte, used 4-byte aligned;
	 * each part on its own page is more than enough. */
	desc_bytes = (16ull * size + 4095) & ~4095ull;
	avail_bytes = (6 + 2ull * size + 4095) & ~4095ull;
	used_bytes = (6 + 8ull * size + 4095) & ~4095ull;
	mem = dma_alloc(desc_bytes + avail_bytes + used_bytes, 4096);
	vq->desc = (volatile struct virtq_desc *)mem;
	vq->avail = (volatile struct virtq_avail *)(mem + desc_bytes);
	vq->used = (volatile struct virtq_used *)(mem + desc_bytes + avail_bytes);
	vq->indirect = dma_alloc(sizeof(struct virtq_desc) * VIRTQ_INDIRECT_MAX * size, 16);
	for (unsigned i = 0; i < size; i++)
		vq->desc[i].next = (uint16_t)(i + 1);
	vq->num_free = (uint16_t)size;
	vq->msix_vector = VIRTIO_NO_VECTOR;
	if (use_msix && dev->msix_cap && index + 1 < dev->msix_vectors) {
		vq->irq_vector = virtio_alloc_vector(dev, (int)index);
		msix_entry(dev, index + 1, vq->irq_vector);
		vq->msix_vector = (uint16_t)(index + 1);
	} else {
		vq->avail->flags = 1; /* VIRTQ_AVAIL_F_NO_INTERRUPT: we poll */
	}
	virtio_common_write16(dev, VIRTIO_COMMON_Q_SIZE, (uint16_t)size);
	virtio_common_write16(dev, VIRTIO_COMMON_Q_MSIX, vq->msix_vector);
	if (virtio_common_read16(dev, VIRTIO_COMMON_Q_MSIX) != vq->msix_vector) {
		test_fail("virtio msix", "queue %u: vector %u not accepted", index, vq->msix_vector);
		return -1;
	}
	virtio_common_write32(dev, VIRTIO_COMMON_Q_DESC, (uint32_t)(uint64_t)vq->desc);
	virtio_common_write32(dev, VIRTIO_COMMON_Q_DESC + 4, (uint32_t)((uint64_t)vq->desc >> 32));
	virtio_common_write32(dev, VIRTIO_COMMON_Q_AVAIL, (uint32_t)(uint64_t)vq->avail);
	virtio_common_write32(dev, VIRTIO_COMMON_Q_AVAIL + 4, (uint32_t)((uint64_t)vq->avail >> 32));
	virtio_common_write32(dev, VIRTIO_COMMON_Q_USED, (uint32_t)(uint64_t)vq->used);
	virtio_common_write32(dev, VIRTIO_COMMON_Q_USED + 4, (uint32_t)((uint64_t)vq->used >> 32));
	vq->notify_addr = dev->notify +
			  (uint64_t)virtio_common_read16(dev, VIRTIO_COMMON_Q_NOFF) *
				  dev->notify_multiplier;
	if (dev->num_queues < index + 1)
		dev->num_queues = index + 1;
	return 0;
}

int virtio_init(struct virtio_dev *dev, uint64_t wanted_features, unsigned num_queues,
		unsigned queue_size, int use_msix)
{
	uint8_t status;

	if (virtio_reset(dev)) {
		test_fail("virtio reset", "status still %x after 2 s", virtio_status(dev));
		return -1;
	}
	virtio_set_status(dev, VIRTIO_STATUS_ACKNOWLEDGE);
	virtio_set_status(dev, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	if (virtio_negotiate(dev, wanted_features))
		goto failed;
	if (num_queues > virtio_common_read16(dev, VIRTIO_COMMON_NUMQ)) {
		test_fail("virtio queues", "%u wanted, device has %u", num_queues,
			  virtio_common_read16(dev, VIRTIO_COMMON_NUMQ));
		goto failed;
	}
	if (use_msix && !dev->msix_cap)
		use_msix = 0;
	if (use_msix)
		virtio_msix_enable(dev);
	for (unsigned q = 0; q < num_queues; q++)
		if (virtio_setup_queue(dev, q, queue_size, 0, use_msix))
			goto failed;
	virtio_set_status(dev, virtio_status(dev) | VIRTIO_STATUS_DRIVER_OK);
	status = virtio_status(dev);
	if (!(status & VIRTIO_STATUS_DRIVER_OK) || (status & VIRTIO_STATUS_NEEDS_RESET)) {
		test_fail("virtio DRIVER_OK", "status %x", status);
		return -1;
	}
	return 0;
failed:
	virtio_set_status(dev, virtio_status(dev) | VIRTIO_STATUS_FAILED);
	return -1;
}

/* ---- device config ------------------------------------------------------ */

static uint8_t config_generation(struct virtio_dev *dev)
{
	return virtio_common_read8(dev, VIRTIO_COMMON_CFGGEN);
}

uint8_t virtio_config_read8(struct virtio_dev *dev, unsigned off)
{
	return rd8(dev->device_cfg + off);
}

uint32_t virtio_config_read32(struct virtio_dev *dev, unsigned off)
{
	uint8_t gen;
	uint32_t v;
	int tries = 0;

	do {
		gen = config_generation(dev);
		v = rd32(dev->device_cfg + off);
	} while (gen != config_generation(dev) && ++tries < 100);
	return v;
}

/* §4.1.3.1: 64-bit fields are read as two 32-bit halves, under the
 * generation counter (§2.5.1). */
uint64_t virtio_config_read64(struct virtio_dev *dev, unsigned off)
{
	uint8_t gen;
	uint64_t v;
	int tries = 0;

	do {
		gen = config_generation(dev);
		v = rd32(dev->device_cfg + off) | (uint64_t)rd32(dev->device_cfg + off + 4) << 32;
	} while (gen != config_generation(dev) && ++tries < 100);
	return v;
}

/* ---- requests ----------------------------------------------------------- */

void virtq_publish(struct virtq *vq, uint16_t head)
{
	vq->avail->ring[vq->avail_idx % vq->size] = head;
	barrier(); /* x86 keeps stores in order; the compiler must too */
	vq->avail_idx++;
	vq->avail->idx = vq->avail_idx;
}

int virtq_submit(struct virtq *vq, const struct virtq_buf *bufs, unsigned n, int indirect)
{
	uint16_t head = vq->free_head, idx = head, last = head;

	if (!n || (indirect && n > VIRTQ_INDIRECT_MAX) || vq->num_free < (indirect ? 1 : n))
		return -1;
	if (indirect) {
		struct virtq_desc *table = vq->indirect + (uint64_t)head * VIRTQ_INDIRECT_MAX;

		for (unsigned i = 0; i < n; i++) {
			table[i].addr = bufs[i].addr;
			table[i].len = bufs[i].len;
			table[i].flags = (uint16_t)((bufs[i].device_writes ? VIRTQ_DESC_F_WRITE : 0) |
						    (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0));
			table[i].next = (uint16_t)(i + 1 < n ? i + 1 : 0);
		}
		vq->desc[head].addr = (uint64_t)table;
		vq->desc[head].len = n * sizeof(struct virtq_desc);
		vq->desc[head].flags = VIRTQ_DESC_F_INDIRECT;
		vq->free_head = vq->desc[head].next;
		vq->num_free--;
		vq->chain_len[head] = 1;
	} else {
		for (unsigned i = 0; i < n; i++) {
			vq->desc[idx].addr = bufs[i].addr;
			vq->desc[idx].len = bufs[i].len;
			vq->desc[idx].flags = (uint16_t)((bufs[i].device_writes ? VIRTQ_DESC_F_WRITE : 0) |
							 (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0));
			last = idx;
			idx = vq->desc[idx].next; /* free-list link = chain link */
		}
		(void)last;
		vq->free_head = idx;
		vq->num_free = (uint16_t)(vq->num_free - n);
		vq->chain_len[head] = (uint16_t)n;
	}
	virtq_publish(vq, head);
	return head;
}

void virtq_notify(struct virtq *vq)
{
	fence(); /* avail->idx visible before the device looks (§2.7.13) */
	wr16(vq->notify_addr, vq->index);
}

uint16_t virtq_pending_used(struct virtq *vq)
{
	return (uint16_t)(vq->used->idx - vq->last_used);
}

static void virtq_free_chain(struct virtq *vq, uint16_t head)
{
	uint16_t n = vq->chain_len[head], last = head;

	if (!n)
		return; /* hand-built by a hostile guest */
	for (uint16_t i = 1; i < n; i++)
		last = vq->desc[last].next;
	vq->desc[last].next = vq->free_head;
	vq->free_head = head;
	vq->num_free = (uint16_t)(vq->num_free + n);
	vq->chain_len[head] = 0;
}

int virtq_wait_used(struct virtq *vq, uint32_t *len, uint64_t timeout_us)
{
	struct stopwatch sw;
	struct virtq_used_elem e;

	stopwatch_start(&sw);
	for (unsigned polls = 1; vq->used->idx == vq->last_used; polls++) {
		if (stopwatch_us(&sw) >= timeout_us)
			return -1;
		/* A broken device completes nothing: do not wait it out. */
		if (!(polls % 64) && virtio_needs_reset(vq->dev))
			return -1;
		if (vq->irq_vector) {
			/* PVM injects a pending interrupt at a VM exit after STI. */
			cpu_sti();
			(void)pmtimer_read();
			cpu_cli();
		}
	}
	barrier();
	e.id = vq->used->ring[vq->last_used % vq->size].id;
	e.len = vq->used->ring[vq->last_used % vq->size].len;
	vq->last_used++;
	if (e.id >= vq->size) {
		test_fail("virtio used ring", "queue %u: used id %u >= size %u", vq->index, e.id,
			  vq->size);
		return -1;
	}
	virtq_free_chain(vq, (uint16_t)e.id);
	if (len)
		*len = e.len;
	return (int)e.id;
}

unsigned virtq_wait_irqs(struct virtq *vq, unsigned min, uint64_t timeout_us)
{
	struct stopwatch sw;

	stopwatch_start(&sw);
	while (vq->irqs < min && stopwatch_us(&sw) < timeout_us) {
		cpu_sti();
		(void)pmtimer_read(); /* the VM exit that lets an interrupt in */
		cpu_cli();
	}
	return vq->irqs;
}

long virtq_transfer(struct virtq *vq, const struct virtq_buf *bufs, unsigned n, int indirect,
		    uint64_t timeout_us)
{
	uint32_t len;
	int head = virtq_submit(vq, bufs, n, indirect);

	if (head < 0)
		return -2;
	virtq_notify(vq);
	if (virtq_wait_used(vq, &len, timeout_us) < 0)
		return -1;
	return len;
}
