#!/usr/bin/env python3
"""Code size of everything a function can reach in a firmware ELF.

Usage: budget.py [--limit BYTES] OBJDUMP ELF ROOT...

Disassembles ELF with OBJDUMP (llvm-objdump), builds the call graph from direct calls and
branches to other symbols (bl, b.w, blx, jal, j, tail calls), and prints, for the closure
of the functions whose demangled names contain each ROOT, the sum of their symbol sizes
(from the symbol table) and the largest members. Data the code reads (.rodata) is listed
separately by the caller with `size -A`. With --limit, exits 1 when the code of any
ROOT's closure is larger than BYTES.
"""
import re
import subprocess
import sys

args = sys.argv[1:]
limit = None
if args[:1] == ["--limit"]:
    limit, args = int(args[1]), args[2:]
objdump, elf, roots = args[0], args[1], args[2:]
over = False
nm = subprocess.run([objdump.replace("objdump", "nm"), "-S", "-C", "--radix=d", elf],
                    capture_output=True, text=True, check=True).stdout
sizes = {}
for line in nm.splitlines():
    parts = line.split(None, 3)
    if len(parts) == 4 and parts[2].lower() == "t":
        sizes[parts[3]] = int(parts[1])
asm = subprocess.run([objdump, "-d", "-C", "--no-show-raw-insn", elf],
                     capture_output=True, text=True, check=True).stdout
calls = {}
current = None
head = re.compile(r"^[0-9a-f]+ <(.+)>:$")
target = re.compile(r"<([^<>]+?)(\+0x[0-9a-f]+)?>")
for line in asm.splitlines():
    m = head.match(line)
    if m:
        if m.group(1).startswith("$"):
            continue  # ARM/RISC-V mapping symbols ($t, $d, $x) are not functions
        current = m.group(1)
        calls.setdefault(current, set())
        continue
    if current is None:
        continue
    t = target.search(line)
    if t and t.group(2) is None and t.group(1) != current:
        calls[current].add(t.group(1))
for root in roots:
    start = [f for f in calls if root in f]
    if not start:
        sys.exit(f"no function matches {root}")
    seen, stack = set(), list(start)
    while stack:
        f = stack.pop()
        if f in seen:
            continue
        seen.add(f)
        stack.extend(calls.get(f, ()))
    total = sum(sizes.get(f, 0) for f in seen)
    verdict = ""
    if limit is not None:
        verdict = f" (limit {limit}: {'over' if total > limit else 'within'})"
        over |= total > limit
    print(f"{root}: {total} bytes of code in {len(seen)} functions{verdict}")
    for f in sorted(seen, key=lambda f: -sizes.get(f, 0))[:12]:
        print(f"  {sizes.get(f, 0):6d}  {f[:110]}")
sys.exit(1 if over else 0)
