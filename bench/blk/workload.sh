#!/bin/bash
# A bench/blk workload name -> "RW BS DEPTH QUEUES HALTPOLL" on one line, e.g.
#   randread-qd1 -> randread 4096 1 1 0;  randrw-qd32-2q -> randrw 4096 32 2 0;
#   read-64k-qd8 -> read 65536 8 1 0;  randread-qd1-hp200 -> randread 4096 1 1 200.
# RW as blk-loadgen's --rw (fio's --rw: the same names); BS defaults to 4k;
# HALTPOLL is blk-loadgen's --halt-poll-us (a guest whose idle vCPU KVM
# polls that long before sleeping; 0: the driver sleeps at once).  fio
# ignores it: it is the same limit either way.
set -eu
rw=${1%%-*} bs=4096 depth= queues=1 halt_poll=0
IFS=- read -ra parts <<<"${1#*-}"
for p in "${parts[@]}"; do
	case $p in
	qd[0-9]*) depth=${p#qd} ;;
	[0-9]*k) bs=$((${p%k} * 1024)) ;;
	[0-9]*q) queues=${p%q} ;;
	hp[0-9]*)
		halt_poll=${p#hp}
		[[ $halt_poll =~ ^[0-9]+$ ]] || { echo "workload $1: $p: want hpUS, microseconds" >&2; exit 2; }
		;;
	*) echo "workload $1: unknown part $p (want RW[-SIZEk]-qdN[-Nq][-hpUS])" >&2; exit 2 ;;
	esac
done
[[ -n $depth && -n $rw ]] || { echo "workload $1: want RW[-SIZEk]-qdN[-Nq][-hpUS]" >&2; exit 2; }
echo "$rw $bs $depth $queues $halt_poll"
