#!/bin/busybox sh
# /init of interop_net_linux_tcg.sh's guest: load the virtio-net driver,
# configure eth0, ping the host's tap, move data both ways with nc, print
# INTEROP lines the host checks, power off.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /lib/modules/order); do insmod /lib/modules/$m 2>/dev/null; done
pass=0 fail=0
ok() { echo "INTEROP PASS: $*"; pass=$((pass + 1)); }
ko() { echo "INTEROP FAIL: $*"; fail=$((fail + 1)); }
HOST=10.77.0.1
dev=$(ls /sys/class/net | grep -v '^lo$' | head -n 1)
[ -n "$dev" ] && ok "virtio-net interface $dev" || ko "no network interface"
echo "INTEROP INFO mac $(cat /sys/class/net/$dev/address) features $(cat /sys/class/net/$dev/device/features 2>/dev/null)"
ip link set lo up
ip link set "$dev" up
ip addr add 10.77.0.2/24 dev "$dev"
ping -c 3 -W 5 $HOST >/tmp/ping 2>&1 && ok "ping $HOST" || { ko "ping $HOST"; cat /tmp/ping; }
# interop_mib=N on the kernel command line: MiB each way (default 4);
# interop_mark=1: say when 1 MiB has come in from the host, so the host can
# kill isola-net in the middle of that transfer.
mib=$(sed -n 's/.*interop_mib=\([0-9]*\).*/\1/p' /proc/cmdline)
mib=${mib:-4}
# guest -> host
dd if=/dev/urandom of=/tmp/up bs=64k count=$((mib * 16)) 2>/dev/null
echo "INTEROP INFO up-sha256 $(sha256sum /tmp/up | cut -d' ' -f1)"
# busybox nc quits when it reads EOF from the socket, and a connecting nc
# shuts its sending half when its standard input ends: the guest listens and
# sends, the host connects with a standard input that never ends.
timeout 100 nc -l -p 5000 </tmp/up &
# READY only once it listens (port 5000 = 0x1388, state 0A = LISTEN): a host
# that connects before gets a reset, and the guest's nc waits in vain
for i in $(seq 100); do
	grep -q ':1388 00000000:0000 0A' /proc/net/tcp && break
	sleep 0.1
done
echo "INTEROP READY"
wait $! && ok "sent $mib MiB to the host" || ko "nc to the host"
# host -> guest
: >/tmp/down
if grep -q interop_mark=1 /proc/cmdline; then
	(while [ "$(stat -c %s /tmp/down)" -lt 1048576 ]; do sleep 0.1; done
	echo "INTEROP MARK down 1 MiB") &
fi
timeout 100 nc $HOST 5001 >/tmp/down && ok "received from the host" || ko "nc from the host"
echo "INTEROP INFO down-sha256 $(sha256sum /tmp/down | cut -d' ' -f1) $(stat -c %s /tmp/down)"
echo "INTEROP DONE pass=$pass fail=$fail"
poweroff -f
