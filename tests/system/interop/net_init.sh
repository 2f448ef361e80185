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
# guest -> host: 4 MiB
dd if=/dev/urandom of=/tmp/up bs=64k count=64 2>/dev/null
echo "INTEROP INFO up-sha256 $(sha256sum /tmp/up | cut -d' ' -f1)"
# busybox nc quits after its first read when it connects with a file on
# stdin; as the listener it sends the whole file: the host connects.
timeout 100 nc -l -p 5000 </tmp/up &
echo "INTEROP READY"
wait $! && ok "sent 4 MiB to the host" || ko "nc to the host"
# host -> guest
sleep 1
timeout 60 nc $HOST 5001 >/tmp/down && ok "received from the host" || ko "nc from the host"
echo "INTEROP INFO down-sha256 $(sha256sum /tmp/down | cut -d' ' -f1) $(stat -c %s /tmp/down)"
echo "INTEROP DONE pass=$pass fail=$fail"
poweroff -f
