#!/bin/sh
# Run the test guests under QEMU TCG (q35) as a reference platform, with the
# command lines that describe QEMU's machine.  Usage: tests/guest/run-qemu.sh
# (from the repository root, after `make guests`).  Exits non-zero on failure.
set -u
G=build/guests
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
QEMU="timeout 60 qemu-system-x86_64 -M q35,accel=tcg -cpu max -m 256M -nographic
 -no-reboot -display none -vga none -net none -device isa-debug-exit,iobase=0xf4,iosize=4"
# QEMU q35 with 256 MiB: RAM [0, 0x9fc00) + [1 MiB, 0xffdf000).
QEMU_MEM=$((0x9fc00 + 0xffdf000 - 0x100000))
failed=0

python3 -c 'import sys; sys.stdout.buffer.write(bytes((i*131+7)&0xff for i in range(300000)))' \
	> "$TMP/initrd"

# with_len CMDLINE: substitute the cmdline_len=LLLL placeholder with the length.
with_len() {
	n=${#1}
	printf '%s' "$1" | sed "s/LLLL/$(printf %04d "$n")/"
}

# check NAME WANT_STATUS QEMU_ARGS...
check() {
	name=$1 want=$2
	shift 2
	$QEMU "$@" < /dev/null > "$TMP/$name.out" 2>&1
	got=$?
	if [ "$got" = "$want" ]; then
		echo "ok   $name (status $got)"
	else
		echo "FAIL $name: status $got, want $want"
		grep -a -E 'FAIL|PASS' "$TMP/$name.out" | sed 's/^/     /'
		failed=1
	fi
}

check hello 1 -kernel $G/hello.elf -smp 2 -append "hello"
check pvh 1 -kernel $G/pvh.elf -initrd "$TMP/initrd" \
	-append "$(with_len "mem=$QEMU_MEM initrd_size=300000 cmdline_len=LLLL cmdline_end")"
check acpi 1 -kernel $G/acpi.elf -smp 3 -append "cpus=3 ecam=0xb0000000 rsdt_ok"
check pci 1 -kernel $G/pci.elf -append "host_bridge=8086:29c0"
check smp 1 -kernel $G/smp.elf -smp 4 -append "cpus=4"
check timer 1 -kernel $G/timer.elf
check ring3 1 -kernel $G/ring3.elf
check poweroff 0 -kernel $G/poweroff.elf
check reset 0 -kernel $G/reset.elf
check reset_cf9 0 -kernel $G/reset.elf -append "method=cf9"
check bootparams_realmode 3 -kernel $G/bootparams.bzimage

# serial_irq needs a byte on the serial input after READY.
(sleep 2; printf Z; sleep 2) | $QEMU -kernel $G/serial_irq.elf > "$TMP/serial_irq.out" 2>&1
got=$?
if [ "$got" = 1 ] && grep -q 'PASS: got byte 0x5a' "$TMP/serial_irq.out"; then
	echo "ok   serial_irq (status 1)"
else
	echo "FAIL serial_irq: status $got"; failed=1
fi
exit $failed
