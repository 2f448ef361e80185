#!/bin/bash
# A bench/blk workload name -> "RW BS DEPTH QUEUES" on one line, e.g.
#   randread-qd1 -> randread 4096 1 1;  randrw-qd32-2q -> randrw 4096 32 2;
#   read-64k-qd8 -> read 65536 8 1.
# RW as blk-loadgen's --rw (fio's --rw: the same names); BS defaults to 4k.
set -eu
rw=${1%%-*} bs=4096 depth= queues=1
IFS=- read -ra parts <<<"${1#*-}"
for p in "${parts[@]}"; do
	case $p in
	qd[0-9]*) depth=${p#qd} ;;
	[0-9]*k) bs=$((${p%k} * 1024)) ;;
	[0-9]*q) queues=${p%q} ;;
	*) echo "workload $1: unknown part $p (want RW[-SIZEk]-qdN[-Nq])" >&2; exit 2 ;;
	esac
done
[[ -n $depth && -n $rw ]] || { echo "workload $1: want RW[-SIZEk]-qdN[-Nq]" >&2; exit 2; }
echo "$rw $bs $depth $queues"
