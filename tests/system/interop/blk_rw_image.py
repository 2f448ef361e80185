#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""blk_rw_image.py CONSOLE IMAGE ORIGINAL

Check from the host what the blk_rw test guest (tests/guest/blk_rw.c) wrote:
every `blk_rw: pattern sector=S count=C seed=X` region it printed holds the
pattern of tests/guest/lib/pattern.c (the little-endian 64-bit word at disk
byte offset o is ((o / 8) + 1) * 0x9e3779b97f4a7c15 ^ seed), every
`blk_rw: zeroes sector=S count=C` region holds zeroes, and every other byte
is what ORIGINAL held, except the DISCARD range (capacity/8, 32 sectors),
whose contents after a discard are only a hint.  The same formula as
tests/system/virtio_guests.sh; used by the interop tests.
"""
import re
import struct
import sys

MUL, M64 = 0x9e3779b97f4a7c15, (1 << 64) - 1
SECTOR = 512


def pattern(start, nbytes, seed):
    return b''.join(struct.pack('<Q', ((((o >> 3) + 1) * MUL) & M64) ^ seed)
                    for o in range(start, start + nbytes, 8))


def main(console, image, original):
    text = open(console, 'rb').read().decode('latin-1')
    img, old = open(image, 'rb').read(), open(original, 'rb').read()
    if len(img) != len(old):
        sys.exit(f'image is {len(img)} bytes, was {len(old)}')
    expect = bytearray(old)
    pat = re.findall(r'blk_rw: pattern sector=(\d+) count=(\d+) seed=([0-9a-f]+)', text)
    zer = re.findall(r'blk_rw: zeroes sector=(\d+) count=(\d+)', text)
    if len(pat) < 6:
        sys.exit(f'only {len(pat)} pattern regions on the console, want 6')
    for s, c, seed in pat:
        s, c = int(s) * SECTOR, int(c) * SECTOR
        expect[s:s + c] = pattern(s, c, int(seed, 16))
    for s, c in zer:
        s, c = int(s) * SECTOR, int(c) * SECTOR
        expect[s:s + c] = bytes(c)
    n = len(img) // SECTOR
    discard = slice(n // 8 * SECTOR, (n // 8 + 32) * SECTOR)
    expect[discard] = img[discard]
    if img != expect:
        bad = next(i for i in range(len(img)) if img[i] != expect[i])
        sys.exit(f'image differs at byte {bad} (sector {bad // SECTOR}): {img[bad]:#04x}, '
                 f'want {expect[bad]:#04x}')
    sectors = [int(s) for s, _, _ in pat]
    print(f'image ok: {len(pat)} pattern regions (sectors {min(sectors)}..{max(sectors)}'
          f'{", the first and the last" if 0 in sectors and n - 1 in sectors else ""}), '
          f'{len(zer)} zeroed, the rest unchanged')


if __name__ == '__main__':
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
