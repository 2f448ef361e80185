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
