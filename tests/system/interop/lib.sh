#!/bin/bash
# SPDX-License-Identifier: MIT
# Helpers for the interop system tests (sourced after tests/lib.sh):
# a temp dir, background processes ended by pid on exit, a failure counter.
#   interop_init NAME        TMP=/tmp/isola-NAME.XXXXXX, cleanup trap
#   bad MSG                  print FAIL: MSG, remember the failure
#   start_server LOG CMD...  start a device server, wait until it is
#                            sandboxed (its socket listens by then); SERVER_PID
#   server_ok PID LOG WHAT   the server is alive and logged no warning/error
#   bounded SECONDS CMD...   timeout SECONDS CMD, as a job the cleanup ends
#                            if the test is stopped early; its status
#   elapsed START            seconds since START (date +%s.%N)

interop_init() {
	TMP=$(mktemp -d "/tmp/isola-$1.XXXXXX") || exit 1
	PIDS=()
	failed=0
	trap interop_cleanup EXIT
	# Explicit traps: `wait` (bounded) returns at once for a trapped signal,
	# and the EXIT trap then ends the servers, QEMU and qsd.
	trap 'exit 143' TERM
	trap 'exit 130' INT
	trap 'exit 129' HUP
}

interop_cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	rm -rf "$TMP"
}

bad() { echo "FAIL: $*"; failed=1; }

start_server() {
	local log=$1
	shift
	"$@" </dev/null >"$log" 2>&1 &
	SERVER_PID=$!
	PIDS+=("$SERVER_PID")
	for _ in $(seq 100); do
		grep -q 'sandboxed:' "$log" && return 0
		kill -0 "$SERVER_PID" 2>/dev/null || break
		sleep 0.1
	done
	sed 's/^/    | /' "$log"
	fail "$* did not start"
}

# Lines a healthy server prints: startup, connections.  Anything else that
# smells of trouble fails the test.
server_ok() {
	local pid=$1 log=$2 what=$3
	if ! kill -0 "$pid" 2>/dev/null; then
		bad "$what died"
		sed 's/^/    | /' "$log"
		return 1
	fi
	if grep -vE ': (sandboxed:|serving |front-end (connected|disconnected))' "$log" |
		grep -iE 'warning|error|refused|malformed|broke|cannot|could not|SIGSYS|Sanitizer|killed' |
		sed 's/^/    | /' | grep .; then
		bad "$what logged a warning or an error (above)"
		return 1
	fi
	echo "ok   $what alive, nothing wrong logged"
}

bounded() {
	local pid st
	timeout "$@" &
	pid=$!
	PIDS+=("$pid")
	wait "$pid"
	st=$?
	local keep=() p
	for p in "${PIDS[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
	PIDS=("${keep[@]}")
	return $st
}

elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
