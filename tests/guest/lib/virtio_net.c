/* SPDX-License-Identifier: MIT */
/*
 * virtio-net for the test guests (virtio 1.2 §5.1): see virtio.h.  Kept
 * small for PVM, where guest ring 0 is emulated: one descriptor per frame,
 * fixed buffers (no allocation per frame), copies with REP MOVSB.
 */
#include "virtio.h"

static void net_copy(void *dst, const void *src, uint64_t n)
{
	__asm__ volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(n) : : "memory");
}

/* A VM exit with interrupts open, so PVM can inject a pending MSI-X. */
static void net_idle(struct virtq *vq)
{
	if (vq->irq_vector) {
		cpu_sti();
		(void)pmtimer_read();
		cpu_cli();
	}
}

unsigned virtio_net_ctrl_index(const struct virtio_net *net)
{
	/* §5.1.2: controlq is 2N with MQ (N = max_virtqueue_pairs), else 2. */
	if (net->dev.features & VIRTIO_BIT(VIRTIO_NET_F_MQ))
		return 2u * net->max_pairs;
	return 2;
}

static uint16_t config_read16(struct virtio_dev *dev, unsigned off)
{
	return (uint16_t)(virtio_config_read8(dev, off) | virtio_config_read8(dev, off + 1) << 8);
}

/* §5.1.4: each field is valid only with its feature. */
static void net_read_config(struct virtio_net *net)
{
	struct virtio_dev *dev = &net->dev;

	for (unsigned i = 0; i < 6; i++)
		net->mac[i] = dev->features & VIRTIO_BIT(VIRTIO_NET_F_MAC)
				      ? virtio_config_read8(dev, VIRTIO_NET_CONFIG_MAC + i)
				      : (uint8_t)(i == 0 ? 0x02 : i); /* locally administered */
	net->link_status = dev->features & VIRTIO_BIT(VIRTIO_NET_F_STATUS)
				   ? config_read16(dev, VIRTIO_NET_CONFIG_STATUS)
				   : VIRTIO_NET_S_LINK_UP;
	net->max_pairs = dev->features & VIRTIO_BIT(VIRTIO_NET_F_MQ)
				 ? config_read16(dev, VIRTIO_NET_CONFIG_MAX_PAIRS)
				 : 1;
	net->mtu = dev->features & VIRTIO_BIT(VIRTIO_NET_F_MTU)
			   ? config_read16(dev, VIRTIO_NET_CONFIG_MTU)
			   : 1500;
}

static int net_setup_pair(struct virtio_net *net, unsigned pair, int use_msix)
{
	struct virtio_dev *dev = &net->dev;
	struct virtq *rx = &dev->vq[2 * pair], *tx = &dev->vq[2 * pair + 1];

	if (virtio_setup_queue(dev, 2 * pair, VIRTIO_NET_QUEUE_SIZE, 0, use_msix) ||
	    virtio_setup_queue(dev, 2 * pair + 1, VIRTIO_NET_QUEUE_SIZE, 0, use_msix))
		return -1;
	net->rx_buf[pair] = dma_alloc((uint64_t)rx->size * VIRTIO_NET_BUF_SIZE, 4096);
	net->tx_buf[pair] = dma_alloc((uint64_t)tx->size * VIRTIO_NET_BUF_SIZE, 4096);
	/* RX descriptor i is RX buffer i for good; all of them are posted. */
	for (unsigned i = 0; i < rx->size; i++) {
		rx->desc[i].addr = (uint64_t)net->rx_buf[pair] + (uint64_t)i * VIRTIO_NET_BUF_SIZE;
		rx->desc[i].len = VIRTIO_NET_BUF_SIZE;
		rx->desc[i].flags = VIRTQ_DESC_F_WRITE;
		rx->desc[i].next = 0;
		virtq_publish(rx, (uint16_t)i);
	}
	rx->num_free = 0;
	/* TX descriptor i is TX buffer i; the free ones are on a stack. */
	for (unsigned i = 0; i < tx->size; i++) {
		tx->desc[i].addr = (uint64_t)net->tx_buf[pair] + (uint64_t)i * VIRTIO_NET_BUF_SIZE;
		tx->desc[i].flags = 0;
		tx->desc[i].next = 0;
		net->tx_free[pair][i] = (uint16_t)(tx->size - 1 - i);
	}
	tx->num_free = 0;
	net->tx_nfree[pair] = tx->size;
	net->tx_open[pair] = -1;
	net->rx_open[pair] = -1;
	return 0;
}

int virtio_net_init(struct virtio_net *net, uint64_t wanted, unsigned pairs, int use_msix)
{
	struct virtio_dev *dev = &net->dev;
	uint8_t status;

	if (virtio_reset(dev)) {
		test_fail("virtio-net reset", "status still %x after 2 s", virtio_status(dev));
		return -1;
	}
	virtio_set_status(dev, VIRTIO_STATUS_ACKNOWLEDGE);
	virtio_set_status(dev, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	/* No offloads: every frame is whole and checksummed (§5.1.6.2). */
	if (virtio_negotiate(dev, wanted))
		goto failed;
	net_read_config(net);
	console_printf("virtio-net: mac %02x:%02x:%02x:%02x:%02x:%02x status %x max_pairs %u mtu %u\n",
		       net->mac[0], net->mac[1], net->mac[2], net->mac[3], net->mac[4], net->mac[5],
		       net->link_status, net->max_pairs, net->mtu);
	/* §5.1.4.2: max_virtqueue_pairs is 1..0x8000; the kit holds 8. */
	if (net->max_pairs < 1 || net->max_pairs > VIRTIO_NET_MAX_PAIRS) {
		test_fail("virtio-net config", "max_virtqueue_pairs %u (kit: 1..%u)", net->max_pairs,
			  VIRTIO_NET_MAX_PAIRS);
		goto failed;
	}
	if (pairs < 1 || pairs > net->max_pairs) {
		test_fail("virtio-net pairs", "%u wanted, device has %u", pairs, net->max_pairs);
		goto failed;
	}
	if (use_msix && !dev->msix_cap)
		use_msix = 0;
	if (use_msix)
		virtio_msix_enable(dev);
	for (unsigned p = 0; p < pairs; p++)
		if (net_setup_pair(net, p, use_msix))
			goto failed;
	net->pairs = pairs;
	net->active_pairs = 1; /* §5.1.6.5.5: multiqueue starts disabled */
	net->ctrl = NULL;
	if (dev->features & VIRTIO_BIT(VIRTIO_NET_F_CTRL_VQ)) {
		if (virtio_setup_queue(dev, virtio_net_ctrl_index(net), 16, 0, use_msix))
			goto failed;
		net->ctrl = &dev->vq[virtio_net_ctrl_index(net)];
		net->ctrl_buf = net->ctrl_buf ? net->ctrl_buf : dma_alloc(4096, 64);
	}
	virtio_set_status(dev, virtio_status(dev) | VIRTIO_STATUS_DRIVER_OK);
	status = virtio_status(dev);
	if (!(status & VIRTIO_STATUS_DRIVER_OK) || (status & VIRTIO_STATUS_NEEDS_RESET)) {
		test_fail("virtio-net DRIVER_OK", "status %x", status);
		return -1;
	}
	/* §3.1.1: no notification before DRIVER_OK; now the RX buffers count. */
	for (unsigned p = 0; p < pairs; p++)
		virtq_notify(&dev->vq[2 * p]);
	for (unsigned p = 0; p < VIRTIO_NET_MAX_PAIRS; p++)
		net->rx_frames[p] = net->tx_frames[p] = 0;
	net->rx_bad = 0;
	return 0;
failed:
	virtio_set_status(dev, virtio_status(dev) | VIRTIO_STATUS_FAILED);
	return -1;
}

/* Take back the TX buffers the device is done with. */
static void net_tx_reap(struct virtio_net *net, unsigned pair)
{
	struct virtq *tx = &net->dev.vq[2 * pair + 1];

	while (tx->used->idx != tx->last_used) {
		uint32_t id = tx->used->ring[tx->last_used % tx->size].id;

		tx->last_used++;
		if (id < tx->size && net->tx_nfree[pair] < tx->size)
			net->tx_free[pair][net->tx_nfree[pair]++] = (uint16_t)id;
		else
			net->rx_bad++; /* not ours: a device bug the guest survives */
	}
}

uint8_t *virtio_net_tx_begin(struct virtio_net *net, unsigned pair)
{
	struct virtq *tx;
	struct stopwatch sw;
	uint16_t slot;

	if (pair >= net->pairs)
		return NULL;
	tx = &net->dev.vq[2 * pair + 1];
	if (net->tx_open[pair] >= 0)
		return net->tx_buf[pair] + (uint64_t)net->tx_open[pair] * VIRTIO_NET_BUF_SIZE +
		       VIRTIO_NET_HDR_SIZE;
	stopwatch_start(&sw);
	for (net_tx_reap(net, pair); !net->tx_nfree[pair]; net_tx_reap(net, pair)) {
		if (stopwatch_us(&sw) > VIRTIO_NET_TIMEOUT_US || virtio_needs_reset(&net->dev))
			return NULL;
		net_idle(tx);
	}
	slot = net->tx_free[pair][--net->tx_nfree[pair]];
	net->tx_open[pair] = slot;
	return net->tx_buf[pair] + (uint64_t)slot * VIRTIO_NET_BUF_SIZE + VIRTIO_NET_HDR_SIZE;
}

int virtio_net_tx_commit(struct virtio_net *net, unsigned pair, uint32_t len)
{
	struct virtq *tx = &net->dev.vq[2 * pair + 1];
	int slot = pair < net->pairs ? net->tx_open[pair] : -1;
	uint8_t *buf;

	if (slot < 0 || len > VIRTIO_NET_FRAME_MAX)
		return -1;
	buf = net->tx_buf[pair] + (uint64_t)slot * VIRTIO_NET_BUF_SIZE;
	/* §5.1.6.2: no checksum or GSO asked of the device. */
	dma_zero(buf, VIRTIO_NET_HDR_SIZE);
	tx->desc[slot].len = VIRTIO_NET_HDR_SIZE + len;
	net->tx_open[pair] = -1;
	virtq_publish(tx, (uint16_t)slot);
	virtq_notify(tx);
	net->tx_frames[pair]++;
	return 0;
}

int virtio_net_tx_flush(struct virtio_net *net, uint64_t timeout_us)
{
	struct stopwatch sw;

	stopwatch_start(&sw);
	for (unsigned p = 0; p < net->pairs; p++) {
		struct virtq *tx = &net->dev.vq[2 * p + 1];

		for (net_tx_reap(net, p); net->tx_nfree[p] + (net->tx_open[p] >= 0) < tx->size;
		     net_tx_reap(net, p)) {
			if (stopwatch_us(&sw) > timeout_us || virtio_needs_reset(&net->dev))
				return -1;
			net_idle(tx);
		}
	}
	return 0;
}

int virtio_net_send(struct virtio_net *net, unsigned pair, const void *frame, uint32_t len)
{
	uint8_t *p;

	if (len > VIRTIO_NET_FRAME_MAX || !(p = virtio_net_tx_begin(net, pair)))
		return -1;
	net_copy(p, frame, len);
	return virtio_net_tx_commit(net, pair, len);
}

int virtio_net_recv(struct virtio_net *net, unsigned pair, uint8_t **frame, uint32_t *len)
{
	struct virtq *rx;

	if (pair >= net->pairs)
		return 0;
	rx = &net->dev.vq[2 * pair];
	if (net->rx_open[pair] >= 0)
		virtio_net_rx_release(net, pair);
	net_idle(rx);
	while (rx->used->idx != rx->last_used) {
		struct virtq_used_elem e;
		const struct virtio_net_hdr *hdr;
		uint8_t *buf;

		__asm__ volatile("" ::: "memory");
		e.id = rx->used->ring[rx->last_used % rx->size].id;
		e.len = rx->used->ring[rx->last_used % rx->size].len;
		rx->last_used++;
		if (e.id >= rx->size) {
			net->rx_bad++; /* nothing to re-post: the id is not a buffer */
			continue;
		}
		buf = net->rx_buf[pair] + (uint64_t)e.id * VIRTIO_NET_BUF_SIZE;
		hdr = (const struct virtio_net_hdr *)buf;
		/* §5.1.6.4: with MRG_RXBUF a frame may span buffers; ours fit one. */
		if (e.len < VIRTIO_NET_HDR_SIZE + 14 || e.len > VIRTIO_NET_BUF_SIZE ||
		    ((net->dev.features & VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF)) &&
		     hdr->num_buffers != 1)) {
			net->rx_bad++;
			virtq_publish(rx, (uint16_t)e.id);
			virtq_notify(rx);
			continue;
		}
		net->rx_open[pair] = (int)e.id;
		net->rx_frames[pair]++;
		*frame = buf + VIRTIO_NET_HDR_SIZE;
		*len = e.len - VIRTIO_NET_HDR_SIZE;
		return 1;
	}
	return 0;
}

void virtio_net_rx_release(struct virtio_net *net, unsigned pair)
{
	struct virtq *rx = &net->dev.vq[2 * pair];

	if (pair >= net->pairs || net->rx_open[pair] < 0)
		return;
	virtq_publish(rx, (uint16_t)net->rx_open[pair]);
	net->rx_open[pair] = -1;
	virtq_notify(rx);
}

int virtio_net_ctrl(struct virtio_net *net, uint8_t class, uint8_t cmd, const void *data,
		    uint32_t len)
{
	uint8_t *hdr, *payload, *ack;
	struct virtq_buf bufs[3];
	unsigned n = 0;

	if (!net->ctrl || len > 1024)
		return -1;
	hdr = net->ctrl_buf;
	payload = net->ctrl_buf + 64;
	ack = net->ctrl_buf + 2048;
	hdr[0] = class;
	hdr[1] = cmd;
	net_copy(payload, data, len);
	*ack = 0xee;
	/* §5.1.6.5: class and command, the command's data, then the ack byte. */
	bufs[n++] = (struct virtq_buf){(uint64_t)hdr, 2, 0};
	if (len)
		bufs[n++] = (struct virtq_buf){(uint64_t)payload, len, 0};
	bufs[n++] = (struct virtq_buf){(uint64_t)ack, 1, 1};
	if (virtq_transfer(net->ctrl, bufs, n, 0, VIRTIO_NET_TIMEOUT_US) < 0)
		return -1;
	return *(volatile uint8_t *)ack;
}

int virtio_net_set_pairs(struct virtio_net *net, uint16_t pairs)
{
	int ack = virtio_net_ctrl(net, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &pairs,
				  sizeof(pairs));

	if (ack == VIRTIO_NET_OK)
		net->active_pairs = pairs;
	return ack;
}

int virtio_net_set_mac(struct virtio_net *net, const uint8_t mac[6])
{
	int ack = virtio_net_ctrl(net, VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_ADDR_SET, mac, 6);

	if (ack == VIRTIO_NET_OK)
		net_copy(net->mac, mac, 6);
	return ack;
}

int virtio_net_set_promisc(struct virtio_net *net, int on)
{
	uint8_t v = on ? 1 : 0;

	return virtio_net_ctrl(net, VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, &v, 1);
}
