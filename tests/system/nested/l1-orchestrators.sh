# The orchestrators case in L1 (sourced by l1-cases.sh): Kata Containers' Go
# runtime's sequence (/nested/orchestrators/kata-go.seq, the data
# tests/system/orchestrators.sh replays on the host; format in that
# directory's README.md) replayed with busybox and curl against isola, which
# boots Debian's kernel as L2 in isola.mode=drives (l2-init): L2 lists its
# disks with their serials and sizes, then keeps saying "alive N" and every
# size that changes, so the PATCH /drives hot-plug shows inside L2.
# Every step is a line "@@STEP orchestrators/kata-go/NN-NAME PASS|FAIL|SKIP
# WHY" (linux_nested.sh reports each); then "@@CASE orchestrators ...".
# The guest-facing settings are what a Kata configuration.toml gives (kernel,
# image, kernel_params with debug on), plus one deviation: Kata's own guest
# kernel has virtio-blk built in, Debian's has it as a module, so the
# boot-source gets initrd_path (L2's initramfs), which Kata never sends.
# Kata's boot_args have acpi=off, so L2's kernel must read isola's MP table
# (Kata's guest kernel has CONFIG_X86_MPPARSE=y): L2 is Debian's generic
# kernel when L1 has it (/l2/vmlinuz-mp, nested/build.sh), as Debian's
# cloud kernel has no MP table parser and hangs with acpi=off.
# L1 runs under TCG, much slower than a host: every wait is scaled by
# ORCH_SCALE (8), the tool's own 10 s poll of GET / included.
# ORCH_SEQ=FILE replays another sequence (a scratch copy; the functions also
# run on a host under busybox sh, with a test guest instead of L2).

ORCH_SCALE=8

orch_step() { # NAME VERDICT WHY
	ORCH_N=$((ORCH_N + 1))
	n=$(printf '%02d' "$ORCH_N")
	echo "@@STEP orchestrators/$ORCH_TOOL/$n-$1 $2 $3"
	[ "$2" = FAIL ] && ORCH_FAILED="$ORCH_FAILED $ORCH_TOOL/$n-$1"
	[ "$2" = SKIP ] && ORCH_SKIPPED="$ORCH_SKIPPED $ORCH_TOOL/$n-$1"
}

# L2's kernel and initramfs: the MP-table-reading pair when L1 has it; its
# initramfs loads vmw_vsock_virtio_transport (Kata's guest kernel has vsock
# built in), so L2 answers the hybrid socket's CONNECT (GUEST_VSOCK driver)
ORCH_KERNEL=$L2_KERNEL
ORCH_INITRD=${L2_KERNEL%/*}/l2-net.cpio.gz
ORCH_GUEST_VSOCK=none
if [ -e "${L2_KERNEL%/*}/vmlinuz-mp" ]; then
	ORCH_KERNEL=${L2_KERNEL%/*}/vmlinuz-mp
	ORCH_INITRD=${L2_KERNEL%/*}/l2-mp.cpio.gz
	ORCH_GUEST_VSOCK=driver
fi

orch_sub() {
	sed -e "s|\${DIR}|$OD|g" -e "s|\${ID}|$ORCH_ID|g" -e "s|\${KERNEL}|$ORCH_KERNEL|g" \
		-e "s|\${GUEST_ARGS}|$ORCH_GUEST_ARGS|g" -e "s|\${ROOTFS}|${L2_KERNEL%/*}/rootfs.img|g" \
		-e "s|\${TAP}|$ORCH_TAP|g" -e "s|\${MAC}|06:00:ac:10:00:02|g" -e "s|\${VCPUS}|1|g" \
		-e "s|\${MEM}|512|g" -e "s|\${GUEST_VSOCK}|$ORCH_GUEST_VSOCK|g" -e "s|\${INITRD_FIELD}|\"initrd_path\": \"$ORCH_INITRD\", |g"
}

orch_path() { # relative to the run's directory unless absolute
	p=$(echo "$1" | orch_sub)
	case $p in /*) echo "$p" ;; *) echo "$OD/$p" ;; esac
}

orch_alive() { [ -n "$ORCH_PID" ] && kill -0 "$ORCH_PID" 2>/dev/null; }

orch_exit_note() {
	orch_alive || [ -z "$ORCH_PID" ] || echo " (isola exited: $(grep -v '^isola-[a-z]*: ' "$OD/isola.err" | tail -n 2 | tr '\n' ' '))"
}

orch_uptime() { cut -d' ' -f1 /proc/uptime; }
orch_before() { awk -v a="$(orch_uptime)" -v b="$1" 'BEGIN { exit !(a < b) }'; }
orch_deadline() { awk -v a="$(orch_uptime)" -v s="$1" -v k="$ORCH_SCALE" 'BEGIN { print a + s * k }'; }

orch_write_files() {
	for f in $ORCH_FILES; do
		orch_sub <"$OD/.src.$f" >"$OD/$f"
	done
}

orch_start() { # ARGS...
	[ -n "$ORCH_PID" ] && kill -KILL "$ORCH_PID" 2>/dev/null
	echo "L1: [orchestrators] isola $*"
	(cd "$OD" && exec $IP netns exec "$ORCH_NS" "$ISOLA" "$@") </dev/null >>"$OD/console.raw" 2>"$OD/isola.err" &
	ORCH_PID=$!
	ORCH_SOCK=$(echo " $* " | sed -n 's/.* --api-sock \([^ ]*\) .*/\1/p')
	end=$(orch_deadline 10)
	while orch_before "$end" && orch_alive; do
		[ -S "$ORCH_SOCK" ] && return 0
		usleep 20000
	done
	orch_alive
}

orch_exec() { # NAME FLAGS ARGS...
	name=$1 flags=$2
	shift 2
	args=$(echo "$*" | orch_sub)
	# shellcheck disable=SC2086 # paths without spaces
	orch_start $args
	up=$?
	if [ "$flags" = vsock ]; then
		if [ "$up" = 0 ]; then orch_step vsock-config PASS "isola took the config with its vsock section"; else orch_step vsock-config FAIL "isola refused the config$(orch_exit_note)"; fi
	fi
	if [ "$up" = 0 ]; then
		orch_step "$name" PASS "isola $args is running"
	else
		orch_step "$name" FAIL "isola did not come up$(orch_exit_note)"
	fi
}

orch_json() { # KEY: the top-level value of KEY in $OD/resp (isola's compact JSON)
	sed -n "s/.*\"$1\":\"\\{0,1\\}\\([^\",}]*\\).*/\\1/p" "$OD/resp"
}

orch_request() { # METHOD PATH BODY: sets CODE
	if [ "$3" = - ]; then
		CODE=$(curl -s --max-time 10 -o "$OD/resp" -w '%{http_code}' --unix-socket "$ORCH_SOCK" \
			-X "$1" -H 'Accept: application/json' "http://localhost$2" 2>/dev/null)
	else
		CODE=$(curl -s --max-time 10 -o "$OD/resp" -w '%{http_code}' --unix-socket "$ORCH_SOCK" \
			-X "$1" -H 'Accept: application/json' -H 'Content-Type: application/json' \
			--data-binary "$3" "http://localhost$2" 2>/dev/null)
	fi
	[ -f "$OD/resp" ] || : >"$OD/resp"
}

orch_do_step() { # NAME METHOD PATH WANT FLAGS BODY
	name=$1 method=$2 path=$(echo "$3" | orch_sub) want=$4 flags=$(echo "$5" | orch_sub) body=$6
	[ "$body" = - ] || body=$(echo "$body" | orch_sub)
	retry=1 poll=0 checks=''
	for f in $(echo "$flags" | tr ',' ' '); do
		case $f in
		-) ;;
		retry=*) retry=${f#retry=} ;;
		poll=*) poll=${f#poll=} ;;
		*=*) checks="$checks $f" ;;
		esac
	done
	end=$(orch_deadline "$poll")
	tries=0
	while :; do
		tries=$((tries + 1))
		: >"$OD/resp"
		orch_request "$method" "$path" "$body"
		bad=''
		[ "$CODE" = "$want" ] && for c in $checks; do
			got=$(orch_json "${c%%=*}")
			[ "$got" = "${c#*=}" ] || bad="$bad ${c%%=*} is '$got', want '${c#*=}';"
		done
		[ "$CODE" = "$want" ] && [ -z "$bad" ] && break
		if [ "$retry" -gt 1 ] && [ "$tries" -lt "$retry" ] && ! echo "$CODE" | grep -q '^2'; then
			usleep 10000
			continue
		fi
		if [ "$poll" != 0 ] && orch_before "$end" && orch_alive; then
			usleep 10000
			continue
		fi
		break
	done
	resp=$(head -c 200 "$OD/resp" | tr '\n' ' ')
	if [ "$CODE" = "$want" ] && [ -z "$bad" ]; then
		orch_step "$name" PASS "$method $path -> $CODE$checks"
	else
		orch_step "$name" FAIL "$method $path -> $CODE $resp, want $want;$bad$(orch_exit_note)"
	fi
}

orch_console() { tr -d '\r' <"$OD/console.raw"; }

orch_guest() { # NAME SECONDS WHAT
	end=$(orch_deadline "$2")
	before=$(orch_console | grep -c '^L2: alive ')
	while :; do
		case $3 in
		disks=* | nics=*)
			key=drives
			[ "${3%%=*}" = nics ] && key=nics
			got=$(orch_console | sed -n "s/^L2: $key n=\\([0-9]*\\).*/\\1/p" | head -n 1)
			if [ -n "$got" ]; then
				list=$(orch_console | sed -n 's/^L2: drive \(vd[a-z]*\) serial=\([^ ]*\) .*/\1=\2/p' | tr '\n' ' ')
				if [ "$got" = "${3#*=}" ]; then
					orch_step "$1" PASS "L2 sees $got $key, want ${3#*=} ($list)"
				else
					orch_step "$1" FAIL "L2 sees $got $key, want ${3#*=} ($list); the boot_args Kata sends: $(grep -o '"boot_args": "[^"]*"' "$OD/fcConfig.json")"
				fi
				return
			fi
			;;
		count)
			[ "$(orch_console | grep -c '^L2: alive ')" -gt "$before" ] && {
				orch_step "$1" PASS "L2 runs: $(orch_console | grep '^L2: alive ' | tail -n 1)"
				return
			}
			;;
		esac
		{ orch_before "$end" && orch_alive; } || break
		sleep 1
	done
	orch_step "$1" FAIL "within $(($2 * ORCH_SCALE)) s L2 said nothing of $3$(orch_exit_note); L2's last lines: $(orch_console | tail -n 3 | tr '\n' ' ')"
}

orch_l2size() { # NAME SECONDS DISK SECTORS
	end=$(orch_deadline "$2")
	while :; do
		line=$(orch_console | grep "^L2: drive $3 sectors=$4 " | tail -n 1)
		[ -n "$line" ] && { orch_step "$1" PASS "$line"; return; }
		{ orch_before "$end" && orch_alive; } || break
		sleep 1
	done
	orch_step "$1" FAIL "L2 never said $3 has $4 sectors$(orch_exit_note); its lines on $3: $(orch_console | grep "^L2: drive $3" | tr '\n' ' ')"
}

# The hybrid vsock socket answers "CONNECT PORT\n" as the guest allows
# (README.md's hvsock): "OK <hostport>" from a guest listener, or a clean
# close when L2 has none (no Kata agent here); with no vsock driver in the
# guest (GUEST none) an unanswered connection passes too.  curl's telnet://
# over --unix-socket sends stdin as it is and ends when the other end
# closes: status 0 on a close, 56 on a reset, 28 when nothing happened.
orch_hvsock() { # NAME PATH PORT SECONDS GUEST
	p=$(orch_path "$2")
	guest=$(echo "${5:-driver}" | orch_sub)
	end=$(orch_deadline 2)
	while [ ! -S "$p" ] && orch_before "$end"; do usleep 10000; done
	if [ ! -S "$p" ]; then
		orch_step "$1" FAIL "no socket at $p$(orch_exit_note)"
		return
	fi
	got=$(printf 'CONNECT %s\n' "$3" | curl -sS --max-time $(($4 * ORCH_SCALE)) --unix-socket "$p" \
		telnet://localhost 2>"$OD/hvsock.err")
	st=$?
	line=$(echo "$got" | head -n 1 | tr -d '\r')
	if [ "$guest" = driver ] && echo "$line" | grep -qE '^OK [0-9]+$'; then
		orch_step "$1" PASS "$p: CONNECT $3 -> '$line': a guest listener took it"
	elif [ -z "$got" ] && { [ "$st" = 0 ] || [ "$st" = 56 ]; }; then
		orch_step "$1" PASS "$p is a socket; CONNECT $3 with no guest listener (no agent in L2) was closed cleanly, without an OK (curl status $st)"
	elif [ -z "$got" ] && [ "$st" = 28 ] && [ "$guest" = none ]; then
		orch_step "$1" PASS "$p is a socket; CONNECT $3 held unanswered: L2 has no vsock driver, and isola-vsock (as Firecracker) serves host connections once the driver runs"
	else
		orch_step "$1" FAIL "$p: CONNECT $3 -> '$(echo "$got" | head -c 80)', curl status $st ($(head -c 120 "$OD/hvsock.err")), guest vsock $guest; want 'OK <hostport>' or a clean close$(orch_exit_note)"
	fi
}

orch_signal() { # NAME SIG SECONDS
	if ! orch_alive; then
		orch_step "$1" FAIL "isola is not running to receive SIG$2$(orch_exit_note)"
		return
	fi
	kill -"$2" "$ORCH_PID"
	end=$(orch_deadline "$3")
	while orch_alive && orch_before "$end"; do usleep 100000; done
	if orch_alive; then
		orch_step "$1" FAIL "SIG$2: isola still runs after $(($3 * ORCH_SCALE)) s"
		kill -KILL "$ORCH_PID"
	else
		wait "$ORCH_PID"
		orch_step "$1" PASS "SIG$2: isola ended with status $?"
	fi
}

orch_version() { # second-word MIN
	first=$("$ISOLA" --version 2>&1 | head -n 1)
	v=$(echo "$first" | cut -d' ' -f2 | sed 's/^v//')
	if ! echo "$v" | grep -qE '^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$'; then
		orch_step version FAIL "second word '$v' of '$first' is not a semver version; the tool stops: 'Malformed firecracker version'"
	elif awk -v a="${v%%[-+]*}" -v b="$2" 'BEGIN { split(a, x, "."); split(b, y, ".");
		for (i = 1; i <= 3; i++) if (x[i] + 0 != y[i] + 0) exit !(x[i] + 0 > y[i] + 0); exit 0 }'; then
		orch_step version PASS "'$first': $v >= $2"
	else
		orch_step version FAIL "'$first': version $v is below the tool's minimum $2; the tool stops"
	fi
}

orch_replay() { # SEQ
	infile=
	while IFS= read -r line; do
		if [ -n "$infile" ]; then
			if [ "$line" = end ]; then
				infile=''
				orch_write_files
			else
				printf '%s\n' "$line" >>"$OD/.src.$infile"
			fi
			continue
		fi
		case $line in '' | '#'*) continue ;; esac
		# shellcheck disable=SC2086 # the fields
		set -- $line
		op=$1
		case $op in
		tool) ORCH_TOOL=$2 ;;
		version) [ "$2" = none ] || orch_version "$2" "$3" ;;
		dir) mkdir -p "$(orch_path "$2")" ;;
		empty) : >"$(orch_path "$2")" ;;
		image) dd if=/dev/zero of="$(orch_path "$2")" bs=1M count="$3" 2>/dev/null ;;
		fifo)
			p=$(orch_path "$2")
			mkfifo "$p"
			cat "$p" >"$p.out" &
			ORCH_READERS="$ORCH_READERS $!"
			;;
		bind)
			t=$(orch_path "$2")
			[ -e "$t" ] || : >"$t"
			mount -o bind "$(orch_path "$3")" "$t" && ORCH_MOUNTS="$t $ORCH_MOUNTS"
			;;
		unbind)
			t=$(orch_path "$2")
			# Kata's umountResource: unmount(MNT_DETACH); a plain umount is
			# EBUSY while isola-blk holds the file open through the copy
			# of the mount in isola's namespace
			umount -l "$t" && ORCH_MOUNTS=$(echo " $ORCH_MOUNTS " | sed "s| $t | |")
			;;
		file)
			infile=$2
			: >"$OD/.src.$2"
			ORCH_FILES="$ORCH_FILES $2"
			;;
		exec)
			shift
			orch_exec "$@"
			;;
		step)
			body=$(echo "$line" | cut -d' ' -f7-)
			orch_do_step "$2" "$3" "$4" "$5" "$6" "${body:--}"
			;;
		guest) orch_guest "$2" "$3" "$4" ;;
		l2size) orch_l2size "$2" "$3" "$4" "$5" ;;
		exists)
			if [ -e "$(orch_path "$3")" ]; then
				orch_step "$2" PASS "$(orch_path "$3") exists"
			else
				orch_step "$2" FAIL "no $(orch_path "$3")$(orch_exit_note)"
			fi
			;;
		hvsock) orch_hvsock "$2" "$3" "$4" "$5" "$6" ;;
		signal) orch_signal "$2" "$3" "$4" ;;
		*) orch_step "line" FAIL "unknown directive: $line" ;;
		esac
	done <"$1"
}

case_orchestrators() {
	selected orchestrators || return 0
	OD=$W/orch-kata-go
	ORCH_N=0 ORCH_FAILED='' ORCH_SKIPPED='' ORCH_PID='' ORCH_SOCK='' ORCH_FILES='' ORCH_MOUNTS=''
	ORCH_READERS='' ORCH_TOOL=kata-go ORCH_ID=isola-orch-kata-go
	ORCH_NS=orch ORCH_TAP=orchtap0
	ORCH_GUEST_ARGS="$L2_CMDLINE isola.mode=drives isola.wait=240"
	rm -rf "$OD" && mkdir -p "$OD"
	# isola runs under `ip netns exec`, in a mount namespace that is a slave
	# of L1's: Kata's bind mounts (the hot-plugged image over a placeholder)
	# reach it only if L1's root is shared, as systemd makes it on a real
	# host; L1's initramfs root starts private.
	mount --make-rshared / || echo "L1: mount --make-rshared / failed: hot-plugged images stay unseen"
	if [ ! -x "${ISOLA%/*}/isola-net" ] || ! $IP netns add "$ORCH_NS" || ! $IP -n "$ORCH_NS" tuntap add "$ORCH_TAP" mode tap ||
		! $IP -n "$ORCH_NS" link set "$ORCH_TAP" up; then
		result orchestrators FAIL "no isola-net, or no network namespace with a tap for Kata's network interface"
		return
	fi
	set -f # the data's fields are no globs
	orch_replay "${ORCH_SEQ:-/nested/orchestrators/kata-go.seq}"
	set +f
	[ -n "$ORCH_PID" ] && kill -KILL "$ORCH_PID" 2>/dev/null
	# shellcheck disable=SC2086
	[ -n "$ORCH_READERS" ] && kill $ORCH_READERS 2>/dev/null
	for m in $ORCH_MOUNTS; do umount -l "$m"; done
	$IP netns del "$ORCH_NS" 2>/dev/null
	orch_console | sed 's/^/    L2| /'
	sed 's/^/    isola| /' "$OD/isola.err"
	if [ -n "$ORCH_FAILED" ]; then
		result orchestrators FAIL "Kata's Go sequence: failed:$ORCH_FAILED${ORCH_SKIPPED:+; skipped:$ORCH_SKIPPED}"
	elif [ -n "$ORCH_SKIPPED" ]; then
		result orchestrators FAIL "Kata's Go sequence: skipped:$ORCH_SKIPPED (every step must pass)"
	else
		result orchestrators PASS "Kata's Go sequence: every step passed, the vsock config and the hybrid socket's CONNECT included; L2 saw its drives and the hot-plug"
	fi
}
