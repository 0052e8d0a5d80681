#!/usr/bin/env python3
"""check-layers.py - the folder graph of src/libsbx: which folder includes
which, no cycle between folders, and no folder including another's private
header (X/*_internal.h is for X/ only).  Exit 1 on a violation.

  contrib/check-layers.py [-v] [DIR]
-v prints the folder -> folder edges; DIR is the tree to check (default
src/libsbx next to this script; tests/unit/check_layers.sh passes a broken
copy to prove that violations fail).  `make check` runs it.
"""
import os
import re
import sys

args = [a for a in sys.argv[1:] if a != '-v']
top = args[0] if args else os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'src', 'libsbx')
edges, bad = {}, []
for folder in sorted(os.listdir(top)):
    d = os.path.join(top, folder)
    if folder.startswith('.') or not os.path.isdir(d):
        continue
    edges.setdefault(folder, set())
    for name in sorted(os.listdir(d)):
        if not name.endswith(('.c', '.h')):
            continue
        for line in open(os.path.join(d, name)):
            m = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
            if not m or '/' not in m.group(1):
                continue
            other, header = m.group(1).split('/', 1)
            if other == folder:
                continue
            edges[folder].add(other)
            if header.endswith('_internal.h'):
                bad.append('%s/%s includes the private %s' % (folder, name, m.group(1)))

# depth-first search for a cycle
state, cycle = {}, []
def visit(n, path):
    state[n] = 1
    for m in sorted(edges.get(n, ())):
        if state.get(m) == 1:
            cycle.append(path[path.index(m):] + [m] if m in path else path + [m])
        elif m not in state:
            visit(m, path + [m])
    state[n] = 2
for n in sorted(edges):
    if n not in state:
        visit(n, [n])

if '-v' in sys.argv[1:]:
    for n in sorted(edges):
        print('%-10s -> %s' % (n, ' '.join(sorted(edges[n])) or '-'))
for c in cycle:
    bad.append('include cycle: ' + ' -> '.join(c))
for b in bad:
    print('check-layers: ' + b, file=sys.stderr)
sys.exit(1 if bad else 0)
