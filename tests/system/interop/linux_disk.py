#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The disk layout of tests/system/interop_linux_tcg.sh, in one place.

  linux_disk.py patterns DIR          write the pattern files and DIR/layout
                                      (one "name sector count mode bs" line
                                      per region) for the initramfs
  linux_disk.py verify IMAGE ORIGINAL check the image the Linux guest wrote:
                                      every pattern region holds its pattern,
                                      discarded/zeroed regions hold zeroes,
                                      every byte outside the patterns and the
                                      ext4 region is what ORIGINAL held

The guest's /init (interop/linux_init.sh) writes each region with busybox dd,
buffered or O_DIRECT (`mode`), `bs` bytes per write(2); `discard`/`zeroout`
regions are written O_DIRECT, then BLKDISCARD / BLKZEROOUT.  The ext4 round trip
lives in FS_START..FS_END (a loop device at that offset); the host checks it
with e2fsck and debugfs, not here.
"""
import hashlib
import os
import sys

SECTOR = 512
SECTORS = 131072  # 64 MiB
FS_START, FS_SECTORS = 32768, 65536  # ext4 on /dev/loop0 at 16 MiB, 32 MiB
N = SECTORS
# name, first sector, sectors, buffered|direct, bytes per write(2)
REGIONS = [
    ('first', 0, 64, 'buffered', 4096),  # includes sector 0
    ('near_first', 64, 64, 'direct', 512),  # one sector per request
    ('odd', 2049, 777, 'buffered', 512),  # odd start and length: page-cache RMW
    ('odd_direct', 3001, 3, 'direct', 512),  # O_DIRECT, not 4 KiB aligned
    ('big_direct', 4096, 2048, 'direct', 1 << 20),  # 1 MiB writes: split requests
    ('near_last', N - 128, 64, 'buffered', 32768),
    ('last', N - 64, 64, 'direct', 4096),  # includes the last sector
    # Written (O_DIRECT), read back, then BLKDISCARD / BLKZEROOUT: zeroes
    # after (isola-blk punches a hole for DISCARD, so it reads back zeroes).
    ('discarded', 8192, 2048, 'discard', 1 << 20),
    ('zeroed', 10241, 1000, 'zeroout', 512),
]
ZEROED = ('discard', 'zeroout')


def pattern(name, nbytes):
    # Distinct for every region and every 32 bytes, so a misplaced or
    # reordered sector never matches.
    return hashlib.shake_256(b'isola-interop-linux-' + name.encode()).digest(nbytes)


def write_patterns(out):
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, 'layout'), 'w') as layout:
        for name, sector, count, mode, bs in REGIONS:
            assert (count * SECTOR) % bs == 0, name  # dd count= whole writes
            with open(os.path.join(out, name), 'wb') as f:
                f.write(pattern(name, count * SECTOR))
            layout.write(f'{name} {sector} {count} {mode} {bs}\n')
        layout.write(f'fs {FS_START} {FS_SECTORS} loop 0\n')


def verify(image, original):
    img = open(image, 'rb').read()
    old = open(original, 'rb').read()
    if len(img) != SECTORS * SECTOR or len(old) != len(img):
        sys.exit(f'image is {len(img)} bytes, want {SECTORS * SECTOR}')
    expect = bytearray(old)
    for name, sector, count, mode, _ in REGIONS:
        expect[sector * SECTOR:(sector + count) * SECTOR] = \
            bytes(count * SECTOR) if mode in ZEROED else pattern(name, count * SECTOR)
    fs = slice(FS_START * SECTOR, (FS_START + FS_SECTORS) * SECTOR)
    expect[fs] = img[fs]
    if img != expect:
        bad = next(i for i in range(len(img)) if img[i] != expect[i])
        where = next((n for n, s, c, _, _ in REGIONS if s * SECTOR <= bad < (s + c) * SECTOR),
                     'outside every region: should be unchanged')
        sys.exit(f'image differs at byte {bad} (sector {bad // SECTOR}, {where}): '
                 f'{img[bad]:#04x}, want {expect[bad]:#04x}')
    changed = img[fs] != old[fs]
    zeroed = sum(mode in ZEROED for _, _, _, mode, _ in REGIONS)
    print(f'image ok: {len(REGIONS) - zeroed} pattern regions (first and last sector '
          f'included) and {zeroed} discarded/zeroed regions byte for byte, the rest '
          f'unchanged outside the ext4 region'
          f'{"" if changed else " (ext4 region unchanged?!)"}')
    if not changed:
        sys.exit('the ext4 region was never written')


if __name__ == '__main__':
    if len(sys.argv) == 3 and sys.argv[1] == 'patterns':
        write_patterns(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == 'verify':
        verify(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
