#!/bin/bash
# The tree's arrows point down (issue 11 item 1, docs/architecture.md):
#  1. devices/ and lib/ include nothing from core/; lib/ nothing from
#     devices/; servers/ nothing from core/, devices/ or arch/.
#  2. In the include-and-call graph of core/ and devices/ (calls read from
#     the objects' symbol tables, includes from the sources) the only circle
#     is core/vm <-> core/vcpu.
set -u
source "$(dirname "$0")/../lib.sh"
cd "$ISOLA_ROOT"
command -v nm >/dev/null || skip "no nm (binutils)"
ls build/core/vm.o build/devices/vhost_user_device.o >/dev/null 2>&1 || fail "no objects in build/; run make first"

bad=$(grep -rn '#include "core/' devices lib arch servers 2>/dev/null
	grep -rn '#include "devices/' lib servers 2>/dev/null
	grep -rn '#include "arch/' servers 2>/dev/null)
[[ -z $bad ]] || fail "an include points up: $bad"
echo "includes: devices/, lib/, arch/ and servers/ include nothing from core/"

circles=$(python3 - build <<'PY'
import glob, os, re, subprocess, sys
build = sys.argv[1]
defs, undef, edges = {}, {}, {}
for o in glob.glob(build + '/core/*.o') + glob.glob(build + '/devices/*.o'):
    name = os.path.relpath(o, build)[:-2]
    for line in subprocess.run(['nm', o], capture_output=True, text=True).stdout.splitlines():
        p = line.split()
        if len(p) == 3 and p[1] in 'TDBR':
            defs[p[2]] = name
        elif len(p) == 2 and p[0] == 'U':
            undef.setdefault(name, set()).add(p[1])
for name, syms in undef.items():
    for s in syms:
        if s in defs and defs[s] != name:
            edges.setdefault(name, set()).add(defs[s])
for f in glob.glob('core/*.[ch]') + glob.glob('devices/*.[ch]'):
    src = f.rsplit('.', 1)[0]
    for m in re.finditer(r'#include "((?:core|devices)/[^"]+)\.h"', open(f).read()):
        if m.group(1) != src:
            edges.setdefault(src, set()).add(m.group(1))
index, low, stack, on, out = {}, {}, [], set(), []
def visit(v):  # Tarjan's strongly connected components
    index[v] = low[v] = len(index)
    stack.append(v); on.add(v)
    for w in edges.get(v, ()):
        if w not in index:
            visit(w); low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop(); on.discard(w); comp.append(w)
            if w == v:
                break
        if len(comp) > 1:
            out.append(' <-> '.join(sorted(comp)))
sys.setrecursionlimit(10000)
for v in list(edges):
    if v not in index:
        visit(v)
print('\n'.join(sorted(out)))
PY
)
[[ $circles == "core/vcpu <-> core/vm" ]] || fail "circles in core/devices: ${circles:-none found (the check itself is broken?)}"
echo "circles in core/ and devices/: $circles (the only one allowed)"
echo "PASS: layering"
