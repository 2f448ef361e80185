#!/bin/bash
# Helpers for system tests (sourced).  A system test exits 0 on pass, 77 on
# skip (after printing "SKIP: <reason>"), anything else on failure.
ISOLA_ROOT=${ISOLA_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
ISOLA=${ISOLA:-$ISOLA_ROOT/build/isola}
GUESTS=${GUESTS:-$ISOLA_ROOT/build/guests}
export ISOLA GUESTS

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }
is_pvm() { [[ -d /sys/module/kvm_pvm ]]; }
# expect_status WANT GOT WHAT
expect_status() { [[ $1 == "$2" ]] || fail "$3: exit status $2, want $1"; }

# The counter guest's console (tests/guest/counter.c) is "count N\r\n"
# lines written one byte per port write, so a VM paused or killed between
# two bytes leaves its last line cut ("count 3" of "count 31"), and a VM
# restored from that pause first prints the rest of it ("1\r\n").
# console_counts FILE [FRONT]: the N of each whole "count N" line of FRONT
# and FILE read as one stream (FRONT: the cut line FILE's VM continues,
# console_cut); a last line without its newline yet is not counted.
console_counts() {
	{ printf '%s' "${2-}"; cat "$1" 2>/dev/null; printf '\001\n'; } |
		awk '/\001/ { exit } { sub(/\r$/, "") } /^count [0-9]+$/ { print substr($0, 7) }'
}
# console_cut FILE: FILE's last line if its newline is not there (the line a
# pause cut), else nothing.
console_cut() {
	{ cat "$1" 2>/dev/null; printf '\001'; } |
		awk '{ line = $0 } END { sub(/\001$/, "", line); printf "%s", line }'
}
