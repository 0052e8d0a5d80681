#!/usr/bin/env python3
"""gen-hot-text.py - write src/hot-text.ld, the linker script that puts the
code a create/start/delete/run executes at the front of .text, together:
the kernel maps a file's pages 64 KiB around each page touched, so hot code
spread over the whole of .text maps nearly all of it.

  rm -f src/sbxrun && make src/sbxrun LDFLAGS=-Wl,-Map,sbxrun.map
  sudo contrib/gen-hot-text.py src/sbxrun sbxrun.map BUNDLE [BUNDLE...] \\
      > src/hot-text.ld

(in a build configured with the hot-text layout, so with -ffunction-sections).
It puts a uprobe on every function of BINARY (tracefs, as root), runs
`run`, then `create`, `start`, `delete` in each BUNDLE (a bundle with a
seccomp profile is worth one: its cache is warmed first), and names the
input section of every function entered -- the container's init too, which
runs from the same file -- in the order first entered: by step, then by
address.  Functions of a library archive built without -ffunction-sections
come as their object's section.  A stale script only costs memory: a line
that matches nothing is no error, and what is not listed stays in .text.
"""
import bisect
import os
import re
import shutil
import subprocess
import sys
import tempfile

TRACING = '/sys/kernel/tracing'
GROUP = 'sbxhot%d' % os.getpid()
GENERIC = ('.text', '.text.startup', '.text.exit', '.text.unlikely', '.text.hot')


def text_sections(map_path):
    """(address, size, section, file) of the input sections of the code."""
    out, inside, name = [], False, None
    for line in open(map_path):
        line = line.rstrip('\n')
        if re.match(r'\.\S', line):
            # The output sections .text and (from this script) .text.hot
            inside = re.match(r'\.text(\.hot)?(\s|$)', line) is not None
            continue
        if not inside:
            continue
        m = re.match(r' (\.\S+)(?:\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*))?$', line)
        if m and m.group(2):
            name, addr, size, where = m.group(1), m.group(2), m.group(3), m.group(4)
        elif m:
            name = m.group(1)
            continue
        else:
            m = re.match(r'\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*)$', line)
            if not m or not name:
                continue
            addr, size, where = m.groups()
        if int(size, 16):
            out.append((int(addr, 16), int(size, 16), name, where))
        name = None
    return sorted(out)


def functions(binary):
    """{file offset: name} of the functions of BINARY, and its {name: address}."""
    elf = subprocess.run(['readelf', '-lsW', binary], capture_output=True, text=True, check=True).stdout
    loads, syms = [], {}
    for f in (line.split() for line in elf.splitlines()):
        if len(f) >= 5 and f[0] == 'LOAD':
            loads.append((int(f[2], 16), int(f[1], 16), int(f[4], 16)))
        elif len(f) >= 8 and f[3] == 'FUNC' and f[6] != 'UND' and int(f[2], 0) > 0:
            syms.setdefault(int(f[1], 16), f[7])
    offsets = {}
    for addr, name in syms.items():
        for vaddr, off, size in loads:
            if vaddr <= addr < vaddr + size:
                offsets[addr - vaddr + off] = (addr, name)
    return offsets


def hit_counts():
    counts = {}
    for f in (line.split() for line in open(TRACING + '/uprobe_profile')):
        if len(f) >= 3:
            counts[f[1].split('/')[-1]] = int(f[2])
    return counts


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    binary, map_path, bundles = os.path.abspath(sys.argv[1]), sys.argv[2], sys.argv[3:]
    secs = text_sections(map_path)
    starts = [s[0] for s in secs]
    funcs = functions(binary)
    root = tempfile.mkdtemp(prefix='hot-text.')
    sbx = [binary, '--root', root]
    steps = []
    for i, b in enumerate(bundles):
        subprocess.run(sbx + ['run', '--bundle', b, 'warm%d' % i], check=True)
        steps.append([sbx + ['run', '--bundle', b, 'run%d' % i]])
        steps.append([sbx + ['create', '--bundle', b, 'c%d' % i], sbx + ['start', 'c%d' % i],
                      ['sleep', '0.2'], sbx + ['delete', 'c%d' % i]])
    events = {}
    fd = os.open(TRACING + '/uprobe_events', os.O_WRONLY | os.O_APPEND)
    try:
        for off, (addr, name) in funcs.items():
            ev = 'f%x' % addr
            try:
                os.write(fd, ('p:%s/%s %s:0x%x\n' % (GROUP, ev, binary, off)).encode())
                events[ev] = addr
            except OSError:
                pass  # not probeable (not an instruction boundary the kernel accepts)
        with open('%s/events/%s/enable' % (TRACING, GROUP), 'w') as f:
            f.write('1')
        order, seen = [], set()
        for step in steps:
            for cmd in step:
                subprocess.run(cmd, check=True)
            counts = hit_counts()
            new = sorted(a for ev, a in events.items() if counts.get(ev) and a not in seen)
            seen.update(new)
            order.extend(new)
    finally:
        with open('%s/events/%s/enable' % (TRACING, GROUP), 'w') as f:
            f.write('0')
        for ev in events:
            os.write(fd, ('-:%s/%s\n' % (GROUP, ev)).encode())
        os.close(fd)
        shutil.rmtree(root)
    init = [a for a, n in funcs.values() if n == 'sbx_init_main']
    if not init or init[0] not in seen:
        sys.exit('gen-hot-text.py: the init was not seen (is the binary on a file system without overlayfs?)')
    lines, data = [], []
    for addr in order:
        i = bisect.bisect_right(starts, addr) - 1
        if i < 0 or not secs[i][0] <= addr < secs[i][0] + secs[i][1]:
            continue
        _, _, name, where = secs[i]
        m = re.match(r'(?:.*/)?([^/(]+)\((.*)\)$', where)
        obj = '*%s:%s' % m.groups() if m else '*/' + os.path.basename(where)
        # Not a function's own section: name its object.
        pattern = obj + '(%s)' % name if name in GENERIC else '*(%s)' % name
        if pattern not in lines:
            lines.append(pattern)
        # The objects' read-only data (strings, tables), hot or not.
        if obj + '(.rodata .rodata.*)' not in data:
            data.append(obj + '(.rodata .rodata.*)')
    print('/* src/hot-text.ld - made by contrib/gen-hot-text.py: the code a create,\n'
          '   start, delete and run execute, first in .text, and the read-only data\n'
          '   of its objects together after .rodata.  Do not edit.  */')
    print('SECTIONS\n{\n  .text.hot :\n  {')
    for pattern in lines:
        print('    ' + pattern)
    print('  }\n}\nINSERT BEFORE .text;')
    # After .rodata: before it would be the end of the text segment.
    print('SECTIONS\n{\n  .rodata.hot :\n  {')
    for pattern in data:
        print('    ' + pattern)
    print('  }\n}\nINSERT AFTER .rodata;')


main()
