// SPDX-License-Identifier: MIT
/*
 * blkzeroout DEVICE OFFSET LENGTH: BLKZEROOUT on a byte range of a block
 * device (Linux sends REQ_OP_WRITE_ZEROES when the driver offers it: for
 * virtio-blk, VIRTIO_BLK_F_WRITE_ZEROES).  busybox has blkdiscard but no
 * zero-out, so tests/system/interop_linux_tcg.sh builds this statically into
 * its initramfs.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	uint64_t range[2];
	int fd;

	if (argc != 4) {
		fprintf(stderr, "usage: blkzeroout DEVICE OFFSET LENGTH (bytes, multiples of 512)\n");
		return 2;
	}
	range[0] = strtoull(argv[2], NULL, 0);
	range[1] = strtoull(argv[3], NULL, 0);
	fd = open(argv[1], O_WRONLY);
	if (fd < 0) {
		fprintf(stderr, "blkzeroout: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	if (ioctl(fd, BLKZEROOUT, range) < 0) {
		fprintf(stderr, "blkzeroout: %s: BLKZEROOUT %s+%s: %s\n", argv[1], argv[2], argv[3],
			strerror(errno));
		return 1;
	}
	return close(fd) ? 1 : 0;
}
