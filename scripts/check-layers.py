#!/usr/bin/env python3
"""Checks that the includes of src/ and cli/ follow the floor plan.

Usage: scripts/check-layers.py [ROOT]     (ROOT: the repository, by default
                                           the one this script is in)

Reads every .c and .h file under ROOT/src and ROOT/cli, takes each
`#include "..."` and prints one line per violation, as FILE:LINE: what is
wrong, then exits 1; prints nothing and exits 0 when there is none. Run by
`make lint`; tests/unit/test_check_layers.sh tests it on small made-up trees.

The rules (docs/architecture.md, "Floors"):
- a file includes headers from its own folder or from a LOWER floor only;
- folders on the same floor never include each other;
- include/vmproc.h (the public API) and guest/include/vmproc_abi.h (the
  host/guest wire ABI) count as floor 0 and may be included from src/;
- nothing under src/ includes anything from cli/ or tests/;
- a cli/ file includes only include/vmproc.h and cli/ headers;
- there is no include cycle between files;
- no file under src/ or cli/ is longer than MAX_LINES lines.
"""
import os
import re
import sys

# The floors, lowest first. Keep this table identical to the one in
# docs/architecture.md: moving a folder to another floor is a design
# decision, made there first.
FLOORS = {
    "src/util": 0,  # error reporting, iovec helpers
    "src/mem": 1,  # guest memory and its checked accessor
    "src/x86": 2,  # the machine: cpuid, boot params, ELF, MP table, KVM state
    "src/virtio": 2,  # virtqueues, mmio transport, devices
    "src/fuse": 2,  # the FUSE server (host iovecs in, knows nothing of virtio)
    "src/snapshot": 3,  # snapshot file format, save/restore containers
    "src/vmm": 4,  # the VM: config, lifecycle, vCPUs, device wiring, trace
    "src/api": 5,  # the public API behind include/vmproc.h
    "cli": 6,  # the command-line tool
}
# Headers of floor 0 outside src/, includable from any src/ folder.
CONTRACT_HEADERS = {"include/vmproc.h", "guest/include/vmproc_abi.h"}
# Where a quoted include is looked for after the including file's own
# folder, in the order the compiler's -I options give (Makefile).
SEARCH_DIRS = ["src", "include", "guest/include"]

MAX_LINES = 800
# Files allowed over MAX_LINES for now, as "path": "why". Keep it empty:
# a file that grows past the limit is split along its seams instead.
TOO_LONG_ALLOWED = {}

INCLUDE_RE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def folder_of(path):
    """The floor-table folder a repository path belongs to, or None."""
    for folder in sorted(FLOORS, key=len, reverse=True):
        if path == folder or path.startswith(folder + "/"):
            return folder
    return None


def resolve(root, including, name):
    """The repository path an include of name from including names, or None."""
    candidates = [os.path.join(os.path.dirname(including), name)]
    candidates += [os.path.join(d, name) for d in SEARCH_DIRS]
    for c in candidates:
        c = os.path.normpath(c)
        if os.path.isfile(os.path.join(root, c)):
            return c
    return None


def source_files(root):
    files = []
    for top in ("src", "cli"):
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, top)):
            dirnames.sort()
            for f in sorted(filenames):
                if f.endswith((".c", ".h")):
                    files.append(os.path.relpath(os.path.join(dirpath, f), root))
    return files


def check_include(src, target, name):
    """What is wrong with src including target (both repository paths), or None."""
    src_folder = folder_of(src)
    if src.startswith("cli/"):
        if target == "include/vmproc.h" or target.startswith("cli/"):
            return None
        return '"%s" (%s): cli/ includes only include/vmproc.h and cli/ headers' % (name, target)
    if target.startswith("cli/") or target.startswith("tests/"):
        return '"%s" (%s): src/ never includes cli/ or tests/' % (name, target)
    if target in CONTRACT_HEADERS:
        return None
    dst_folder = folder_of(target)
    if dst_folder is None:
        return '"%s" (%s): not in a folder of the floor table' % (name, target)
    if dst_folder == src_folder:
        return None
    if FLOORS[dst_folder] > FLOORS[src_folder]:
        return '"%s": upward include, %s/ (floor %d) from %s/ (floor %d)' % (
            name, dst_folder, FLOORS[dst_folder], src_folder, FLOORS[src_folder])
    if FLOORS[dst_folder] == FLOORS[src_folder]:
        return '"%s": peer include, %s/ and %s/ are both on floor %d' % (
            name, src_folder, dst_folder, FLOORS[src_folder])
    return None


def find_cycles(graph):
    """Each include cycle once, as a list of files (first == last)."""
    cycles = []
    seen_cycles = set()
    state = {}  # file -> 1 on the DFS stack, 2 done
    stack = []

    def visit(f):
        state[f] = 1
        stack.append(f)
        for g in graph.get(f, ()):
            if state.get(g) == 1:
                cyc = stack[stack.index(g):] + [g]
                key = frozenset(cyc)
                if key not in seen_cycles:
                    seen_cycles.add(key)
                    cycles.append(cyc)
            elif g not in state:
                visit(g)
        stack.pop()
        state[f] = 2

    for f in sorted(graph):
        if f not in state:
            visit(f)
    return cycles


def main(argv):
    root = argv[1] if len(argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                      "..")
    root = os.path.abspath(root)
    problems = []
    graph = {}  # file -> files it includes (resolved, src/ and cli/ only)
    where = {}  # (file, included file) -> line number

    for path in source_files(root):
        with open(os.path.join(root, path), encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
        if len(lines) > MAX_LINES and path not in TOO_LONG_ALLOWED:
            problems.append("%s:%d: %d lines, more than %d: split it along its seams" %
                            (path, len(lines), len(lines), MAX_LINES))
        if folder_of(path) is None:
            problems.append("%s:1: not in a folder of the floor table" % path)
            continue
        for n, line in enumerate(lines, 1):
            m = INCLUDE_RE.match(line)
            if not m:
                continue
            name = m.group(1)
            target = resolve(root, path, name)
            if target is None:
                problems.append('%s:%d: "%s": no such file in the folder, src/, include/ or '
                                "guest/include/" % (path, n, name))
                continue
            why = check_include(path, target, name)
            if why:
                problems.append("%s:%d: %s" % (path, n, why))
            graph.setdefault(path, []).append(target)
            where.setdefault((path, target), n)

    for cyc in find_cycles(graph):
        first = cyc[0]
        problems.append("%s:%d: include cycle: %s" % (first, where[(first, cyc[1])],
                                                      " -> ".join(cyc)))

    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
