# L1's console work (isola.nested=console), sourced by l1-init: isola runs
# in the foreground on L1's console, a terminal (ttyS0), booting L2 with a
# busybox shell on its serial console.  tests/system/linux_console.sh types
# into it through tmux and QEMU's stdio.  L1 says whether isola gave the
# terminal back as it found it.
stty -g </dev/console >/tmp/stty.before
echo "L1: console test: terminal $(stty -g </dev/console)"
# cttyhack: the console becomes the shell's controlling terminal, as a
# user's login terminal would be
setsid cttyhack sh -c "$ISOLA run --kernel $L2_KERNEL --initrd $L2_INITRD --memory 256M \
	--cmdline '$L2_CMDLINE isola.mode=shell' --console stdio; echo \$? >/tmp/isola.status"
echo "L1: isola exit status $(cat /tmp/isola.status)"
stty -g </dev/console >/tmp/stty.after
if cmp -s /tmp/stty.before /tmp/stty.after; then
	echo "L1: terminal restored"
else
	echo "L1: terminal NOT restored: $(cat /tmp/stty.before) -> $(cat /tmp/stty.after)"
fi
