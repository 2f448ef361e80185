#!/bin/bash
# The virtio test guests (tests/guest/{blk_rw,blk_ro,rng,multi_disk}.c) with
# disk images made here: first under QEMU TCG (a reference virtio-pci
# implementation: proves the guests), then under build/isola with --disk /
# --rng.  After blk_rw the image is checked from the host side: every region
# the guest printed holds its pattern (or zeroes), every other byte is what
# the image held before; blk_ro's image must be unchanged byte for byte.
# Exit 0 pass, 1 fail (an isola without --disk/--rng or its servers fails).
set -u
cd "$(dirname "$0")/../.."
G=build/guests
ISOLA=${ISOLA:-build/isola}
TMP=$(mktemp -d /tmp/isola-virtio.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
failed=0
SECTORS=16384 # 8 MiB images

for g in blk_rw blk_ro rng multi_disk; do
	[[ -f $G/$g.elf ]] || { echo "FAIL: $G/$g.elf missing: run 'make guests'"; exit 1; }
done

# mkimage PATH: 8 MiB of random bytes (so a missed or misplaced write shows)
mkimage() { head -c $((SECTORS * 512)) /dev/urandom >"$1"; }

# verify_blk_rw CONSOLE IMAGE ORIGINAL: the regions blk_rw printed.
verify_blk_rw() {
	python3 - "$@" <<'EOF'
import re, struct, sys
console, image, orig = sys.argv[1:4]
text = open(console, 'rb').read().decode('latin-1')
img, old = bytearray(open(image, 'rb').read()), open(orig, 'rb').read()
expect = bytearray(old)
covered = bytearray(len(img))
MUL, M64 = 0x9e3779b97f4a7c15, (1 << 64) - 1
pat = re.findall(r'blk_rw: pattern sector=(\d+) count=(\d+) seed=([0-9a-f]+)', text)
zer = re.findall(r'blk_rw: zeroes sector=(\d+) count=(\d+)', text)
if len(pat) < 6:
    sys.exit(f'only {len(pat)} pattern regions in the console')
for s, c, seed in pat:
    s, c, seed = int(s) * 512, int(c) * 512, int(seed, 16)
    expect[s:s + c] = b''.join(struct.pack('<Q', ((((o >> 3) + 1) * MUL) & M64) ^ seed)
                               for o in range(s, s + c, 8))
for s, c in zer:
    s, c = int(s) * 512, int(c) * 512
    expect[s:s + c] = bytes(c)
# blk_rw also writes a pattern before DISCARD (whose result is a hint) and
# before WRITE_ZEROES: those sectors are not compared.
n = len(img) // 512
for s, c in ((n // 8, 32),):
    expect[s * 512:(s + c) * 512] = img[s * 512:(s + c) * 512]
if img != expect:
    bad = next(i for i in range(len(img)) if img[i] != expect[i])
    sys.exit(f'image differs at byte {bad} (sector {bad // 512}): {img[bad]:#x}, want {expect[bad]:#x}')
print(f'image ok: {len(pat)} pattern regions, {len(zer)} zeroed, rest unchanged')
EOF
}

# check NAME WANT STATUS CONSOLE: the status, no FAIL line and, for status 1
# (debug-exit 0), the guest's own verdict line.
check() {
	local name=$1 want=$2 got=$3 console=$4
	if [[ $got == "$want" ]] && ! grep -aq '^FAIL' "$console" &&
		{ [[ $want != 1 ]] || grep -aq '^isola-guest: PASS' "$console"; }; then
		echo "ok   $name (status $got)"
		return 0
	fi
	echo "FAIL $name: status $got, want $want (and an isola-guest: PASS line for 1)"
	grep -a -E '^(FAIL|PASS)|error' "$console" | head -20 | sed 's/^/     /'
	failed=1
	return 1
}

# ---- QEMU TCG reference -----------------------------------------------------
qemu_run() {
	local console=$1
	shift
	timeout 120 qemu-system-x86_64 -M q35,accel=tcg -cpu max -m 256M -nographic -no-reboot \
		-display none -vga none -net none -device isa-debug-exit,iobase=0xf4,iosize=4 \
		"$@" </dev/null >"$console" 2>&1
}
qdisk() { # qdisk N PATH ID [readonly]
	echo "-drive file=$2,format=raw,if=none,id=d$1${4:+,readonly=on}" \
		"-device virtio-blk-pci,drive=d$1,disable-legacy=on,serial=$3"
}
if command -v qemu-system-x86_64 >/dev/null; then
	mkimage "$TMP/q.img"; cp "$TMP/q.img" "$TMP/q.orig"
	# shellcheck disable=SC2046
	qemu_run "$TMP/q_rw.txt" -kernel $G/blk_rw.elf $(qdisk 0 "$TMP/q.img" disk0) \
		-append "sectors=$SECTORS id=disk0"
	check qemu/blk_rw 1 $? "$TMP/q_rw.txt" &&
		{ verify_blk_rw "$TMP/q_rw.txt" "$TMP/q.img" "$TMP/q.orig" || { echo "FAIL qemu/blk_rw image"; failed=1; }; }
	cp "$TMP/q.orig" "$TMP/q.img"
	# shellcheck disable=SC2046
	qemu_run "$TMP/q_rwp.txt" -kernel $G/blk_rw.elf $(qdisk 0 "$TMP/q.img" disk0) \
		-append "sectors=$SECTORS id=disk0 poll no_indirect"
	check qemu/blk_rw_poll 1 $? "$TMP/q_rwp.txt"
	cp "$TMP/q.orig" "$TMP/q.img"
	# shellcheck disable=SC2046
	qemu_run "$TMP/q_ro.txt" -kernel $G/blk_ro.elf $(qdisk 0 "$TMP/q.img" ro0 ro)
	check qemu/blk_ro 1 $? "$TMP/q_ro.txt"
	cmp -s "$TMP/q.img" "$TMP/q.orig" || { echo "FAIL qemu/blk_ro: image changed"; failed=1; }
	qemu_run "$TMP/q_rng.txt" -kernel $G/rng.elf \
		-object rng-random,id=r,filename=/dev/urandom -device virtio-rng-pci,rng=r,disable-legacy=on
	check qemu/rng 1 $? "$TMP/q_rng.txt"
	d=""
	for i in 0 1 2 3; do truncate -s 4M "$TMP/qm$i.img"; d="$d $(qdisk $i "$TMP/qm$i.img" m$i)"; done
	# shellcheck disable=SC2086
	qemu_run "$TMP/q_md.txt" -kernel $G/multi_disk.elf $d -append "ids=m0,m1,m2,m3"
	check qemu/multi_disk 1 $? "$TMP/q_md.txt"
	# Hostile virtio guests (tests/guest/hostile/README.md): QEMU serves some
	# requests isola must refuse, hence `lenient`.  Opt-in (QEMU_HOSTILE=1):
	# they test the fixtures against QEMU, not isola, and QEMU 7.2 under TCG
	# can stall on some of them (virtio_ring_oob timed out in CI).
	truncate -s 8M "$TMP/qh.img"
	for g in $( ((${QEMU_HOSTILE:-0})) && echo $G/hostile/virtio_*.elf); do
		n=$(basename "$g" .elf)
		# shellcheck disable=SC2046
		qemu_run "$TMP/q_$n.txt" -kernel "$g" $(qdisk 0 "$TMP/qh.img" hostile) -append lenient
		check "qemu/$n" 1 $? "$TMP/q_$n.txt"
	done
else
	echo "note: qemu-system-x86_64 not installed: no reference run"
fi

# ---- isola ------------------------------------------------------------------
# --disk, --rng and the servers are part of isola: missing is a failure
for opt in --disk --rng; do
	"$ISOLA" run --help 2>&1 | grep -q -- "$opt" || { echo "FAIL: $ISOLA run --help does not offer $opt"; exit 1; }
done
for server in isola-blk isola-rng; do
	[[ -x $(dirname "$ISOLA")/$server ]] || { echo "FAIL: $(dirname "$ISOLA")/$server is not built (make)"; exit 1; }
done
isola_run() { # isola_run CONSOLE ARGS...
	local console=$1
	shift
	timeout 200 "$ISOLA" run --console "file:$console" --timeout 150 --memory 64M "$@" \
		</dev/null >"$console.out" 2>"$console.err"
	local st=$?
	if grep -q Sanitizer "$console.err"; then
		echo "FAIL: sanitizer report"; cat "$console.err"; failed=1
	fi
	return $st
}
mkimage "$TMP/i.img"; cp "$TMP/i.img" "$TMP/i.orig"
isola_run "$TMP/i_rw.txt" --kernel $G/blk_rw.elf --disk "path=$TMP/i.img,id=disk0" \
	--cmdline "sectors=$SECTORS id=disk0"
check isola/blk_rw 1 $? "$TMP/i_rw.txt" &&
	{ verify_blk_rw "$TMP/i_rw.txt" "$TMP/i.img" "$TMP/i.orig" || { echo "FAIL isola/blk_rw image"; failed=1; }; }
cp "$TMP/i.orig" "$TMP/i.img"
isola_run "$TMP/i_rwp.txt" --kernel $G/blk_rw.elf --disk "path=$TMP/i.img,id=disk0" \
	--cmdline "sectors=$SECTORS id=disk0 poll no_indirect"
check isola/blk_rw_poll 1 $? "$TMP/i_rwp.txt"
cp "$TMP/i.orig" "$TMP/i.img"
isola_run "$TMP/i_ro.txt" --kernel $G/blk_ro.elf --disk "path=$TMP/i.img,readonly=on,id=ro0"
check isola/blk_ro 1 $? "$TMP/i_ro.txt"
cmp -s "$TMP/i.img" "$TMP/i.orig" || { echo "FAIL isola/blk_ro: image changed"; failed=1; }
isola_run "$TMP/i_rng.txt" --kernel $G/rng.elf --rng
check isola/rng 1 $? "$TMP/i_rng.txt"
d=()
for i in 0 1 2 3; do truncate -s 4M "$TMP/im$i.img"; d+=(--disk "path=$TMP/im$i.img,id=m$i"); done
isola_run "$TMP/i_md.txt" --kernel $G/multi_disk.elf "${d[@]}" --cmdline "ids=m0,m1,m2,m3"
check isola/multi_disk 1 $? "$TMP/i_md.txt"
# Every PCI slot but the host bridge's: 31 drives, each its own isola-blk
# (Kata Containers configures 9); a 32nd device is refused at start.
d=() ids=()
for i in $(seq 0 30); do truncate -s 1M "$TMP/iw$i.img"; d+=(--disk "path=$TMP/iw$i.img,id=w$i"); ids+=("w$i"); done
isola_run "$TMP/i_md31.txt" --kernel $G/multi_disk.elf "${d[@]}" --cmdline "disks=31 ids=$(IFS=,; echo "${ids[*]}")"
check isola/multi_disk_31 1 $? "$TMP/i_md31.txt"
isola_run "$TMP/i_md32.txt" --kernel $G/multi_disk.elf "${d[@]}" --rng --cmdline "disks=31"
st=$?
if [[ $st == 2 ]] && grep -q "are 32 devices; the PCI bus holds 31" "$TMP/i_md32.txt.err"; then
	echo "PASS isola/too_many_devices: $(tail -n 1 "$TMP/i_md32.txt.err")"
else
	echo "FAIL isola/too_many_devices: status $st, want 2 and a message: $(tail -c 300 "$TMP/i_md32.txt.err")"
	failed=1
fi
exit $failed
