#!/bin/bash
# One command from a fresh Debian 12 machine to a booted VM: install what is
# missing, build isola and its test guests, boot the demo guest.
set -eu
cd "$(dirname "$0")"
scripts/deps.sh
make -j"$(nproc)" all guests
echo "isola: booting the demo guest (build/guests/hello.elf)"
exec build/isola run --kernel build/guests/hello.elf --memory 256M --cpus 2 --timeout 120 </dev/null
