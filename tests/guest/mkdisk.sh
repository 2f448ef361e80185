#!/bin/sh
# Disk images the virtio cases in cases.list and hostile/cases.list use
# (run by `make guests`, see guest.mk):  tests/guest/mkdisk.sh DIR
#   DIR/disk0.img       8 MiB (16384 sectors): blk_rw, blk_ro, hostile virtio_*
#   DIR/m0..m3.img      4 MiB each: multi_disk
#   DIR/initrd.bin      300000 bytes, byte i = (i*131 + 7) & 0xff: the
#                       initrd_size= check of pvh and bootparams (README.md)
# Sparse and zero-filled; the guests do not depend on the content, so the
# images are reused across runs.  The host-side byte-for-byte checks of
# blk_rw live in tests/system/virtio_guests.sh, on images of its own.
set -eu
dir=${1:?usage: mkdisk.sh DIR}
mkdir -p "$dir"
mk() { [ -f "$dir/$1" ] || truncate -s "$2" "$dir/$1"; }
mk disk0.img 8M
mk ro.img 8M
mk hostile.img 8M
for i in 0 1 2 3; do mk "m$i.img" 4M; done
[ -f "$dir/initrd.bin" ] || python3 -c 'import sys
sys.stdout.buffer.write(bytes((i * 131 + 7) & 0xff for i in range(300000)))' >"$dir/initrd.bin"
