#!/usr/bin/env bash
# A second opinion on the layout test (tests/api/layout.rs): cargo-modules' own reading of the
# crate (rust-analyzer), collapsed to module level. Prints the module-level import cycles (none
# expected) and which top-level module uses which.
#   cargo install cargo-modules --version 0.27.0 --locked   # once; 0.28 needs rustc 1.98
#   tests/scripts/modules.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
dot=$(mktemp)
trap 'rm -f "$dot"' EXIT
# With "owns" edges, so that every module is a node; only "uses" edges count below.
cargo modules dependencies --lib --no-externs --no-sysroot --features fuzzing >"$dot"
python3 - "$dot" <<'PY'
import re, sys
dot = open(sys.argv[1]).read()
labels = dict(re.findall(r'^\s*"([^"]+)" \[label="([^"]*)"', dot, re.M))
mods = {n for n, l in labels.items() if l.split('|')[0].endswith('mod') or l.startswith('crate')}
def module_of(path):
    parts = path.split('::')
    while parts and '::'.join(parts) not in mods:
        parts.pop()
    return '::'.join(parts) or None
edges = {}
for a, b in re.findall(r'"([^"]+)" -> "([^"]+)" \[label="uses"', dot):
    a, b = module_of(a), module_of(b)
    if a and b and a != b:
        edges.setdefault(a, set()).add(b)
def cycle(start):
    stack, seen = [(start, [start])], set()
    while stack:
        node, path = stack.pop()
        for n in sorted(edges.get(node, ())):
            if n == start:
                return path + [n]
            if n not in seen:
                seen.add(n)
                stack.append((n, path + [n]))
cycles = [c for c in map(cycle, sorted(edges)) if c]
print(f"{len(mods)} modules, {sum(map(len, edges.values()))} module-level use edges, {len(cycles)} cycles")
for c in cycles:
    print("  cycle: " + " -> ".join(c))
top = {}
for a, bs in edges.items():
    for b in bs:
        ta, tb = (a.split('::') + [''])[1], (b.split('::') + [''])[1]
        if ta and tb and ta != tb:
            top.setdefault(ta, set()).add(tb)
for k in sorted(top):
    print(f"  {k} -> {', '.join(sorted(top[k]))}")
sys.exit(1 if cycles else 0)
PY
