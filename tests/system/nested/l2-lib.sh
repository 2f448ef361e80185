# Shared by L2's /init (l2-init) and the ext4 root's /sbin/init (rootfs-init).
# Every line meant for the test starts with "L2: " so L1 can pick it out of
# the console among the kernel's.

say() { echo "L2: $*"; }

# l2_arg NAME: the value of isola.NAME=VALUE on the kernel command line
l2_arg() { sed -n "s/.*isola\.$1=\([^ ]*\).*/\1/p" /proc/cmdline; }

# The kernel log must hold no WARNING, BUG, Call Trace or Oops, with one
# exception: under nested SVM on QEMU TCG, L1's CPUID reports an XSAVE area
# size that does not match the features it enables, so the L2 kernel's
# fpu__init_system_xstate() warns "XSAVE consistency problem" from
# arch/x86/kernel/fpu/xstate.c.  QEMU in the same L1 shows the same warning
# (docs/linux.md), so it says nothing about isola; exactly that warning
# block is dropped (from its "cut here" line to its "end trace" line, and
# the "XSAVE consistency problem" lines before it), nothing else.
l2_check_dmesg() {
	dmesg >/tmp/dmesg
	awk '
		/XSAVE consistency problem/ { next }
		/-+\[ cut here \]-+/ { inblock = 1; block = $0 "\n"; next }
		inblock {
			block = block $0 "\n"
			if ($0 ~ /---\[ end trace/) {
				inblock = 0
				if (block !~ /arch\/x86\/kernel\/fpu\/xstate\.c/) printf "%s", block
			}
			next
		}
		{ print }
		END { if (inblock) printf "%s", block }
	' /tmp/dmesg >/tmp/dmesg.rest
	if grep -E 'WARNING|BUG|Call Trace|Oops|I/O error|i8042: (Warning|Failed)' /tmp/dmesg.rest >/tmp/dmesg.bad; then
		sed 's/^/L2: dmesg-bad: /' /tmp/dmesg.bad
		say "dmesg-unclean"
	else
		say "dmesg-clean"
	fi
	tolerated=$(grep -c 'xstate.c' /tmp/dmesg)
	[ "$tolerated" -gt 0 ] && say "dmesg-tolerated: the nested-SVM XSAVE warning ($tolerated lines)"
}

l2_finish() {
	l2_check_dmesg
	say "poweroff"
	poweroff -f
}
