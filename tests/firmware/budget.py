#!/usr/bin/env python3
"""Code size of everything a function can reach in a firmware ELF.

Usage: budget.py OBJDUMP ELF ROOT...

Disassembles ELF with OBJDUMP (llvm-objdump), builds the call graph from direct calls and
branches to other symbols (bl, b.w, blx, jal, j, tail calls), and prints, for the closure
of the functions whose demangled names contain each ROOT, the sum of their symbol sizes
(from the symbol table) and the largest members. Data the code reads (.rodata) is listed
separately by the caller with `size -A`.
"""
import re
import subprocess
import sys

objdump, elf, roots = sys.argv[1], sys.argv[2], sys.argv[3:]
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
    seen, stack = set(), list(start)
    while stack:
        f = stack.pop()
        if f in seen:
            continue
        seen.add(f)
        stack.extend(calls.get(f, ()))
    total = sum(sizes.get(f, 0) for f in seen)
    print(f"{root}: {total} bytes of code in {len(seen)} functions")
    for f in sorted(seen, key=lambda f: -sizes.get(f, 0))[:12]:
        print(f"  {sizes.get(f, 0):6d}  {f[:110]}")
