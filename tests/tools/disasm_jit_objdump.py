#!/usr/bin/env python3
"""`bpfvm disasm --jit` against LLVM's own tools.

For each FILE: the native rows of `bpfvm disasm FILE --jit --engine ENGINE` must be, offset for
offset and text for text, what llvm-objdump-19 -D prints for the same bytes (put into an ELF
object by llvm-objcopy); the BPF rows must be the instructions `bpfvm disasm FILE` prints; and
where a BPF instruction below has one, the code listed under it must hold the machine
instruction that does its work (so the code is cut at the right instructions).

usage: disasm_jit_objdump.py BPFVM LLVM_OBJCOPY LLVM_OBJDUMP ENGINE FILE[@PROGRAM]...
"""
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ELF_FORMAT = {"jit-x64": "elf64-x86-64", "jit-a64": "elf64-littleaarch64"}
# llvm-objdump's comment after the operands: "# imm = 0x10" (x86-64), "// =16" (AArch64).
COMMENT = {"jit-x64": re.compile(r"\s+#.*$"), "jit-a64": re.compile(r"\s+//.*$")}
# BPF instruction -> the machine instruction(s) its code must contain (in the rows under it,
# joined with "; "), from what each operation is on the target (tests/tools/data/jit_mix.s).
# a64: atomics as LL/SC loops (x86-64 hosts) or LSE.
WORK = {
    "jit-x64": {
        "r6 = 0x1122334455667788 ll": r"movabsq \$0x1122334455667788, %",
        "r2 /= r3": r"\bdivq %",
        "w2 s/= w3": r"\bidivl %",
        "r2 s%= r3": r"\bidivq %",
        "r4 <<= r3": r"\bshlx?q ",
        "r4 s>>= r3": r"\bsarx?q ",
        "r4 = bswap64 r4": r"\bbswapq %",
        "lock *(u64 *)(r10 - 0x8) += r5": r"\block; addq %\w+, -0x8\(%rbp\)",
        "r5 = atomic_fetch_add((u64 *)(r10 - 0x8), r5)": r"\block; xaddq %\w+, -0x8\(%rbp\)",
        "w0 = cmpxchg32_32(r10 - 0x4, w0, w5)": r"\block; cmpxchgl %\w+, -0x4\(%rbp\)",
        "r5 = xchg_64(r10 - 0x8, r5)": r"\bxchgq %\w+, -0x8\(%rbp\)",
        "call 0x5": r"\bcallq ",
    },
    "jit-a64": {
        "r6 = 0x1122334455667788 ll": r"mov (x\d+), #0x7788; movk \1, #0x5566, lsl #16; "
        r"movk \1, #0x3344, lsl #32; movk \1, #0x1122, lsl #48",
        "r2 /= r3": r"\budiv x",
        "w2 s/= w3": r"\bsdiv w",
        "r2 s%= r3": r"\bsdiv (x\d+), .*\bmsub x\d+, \1, ",
        "r4 <<= r3": r"\blsl x",
        "r4 s>>= r3": r"\basr x",
        "r4 = bswap64 r4": r"\brev x",
        "lock *(u64 *)(r10 - 0x8) += r5": r"\bldxr x.*\badd x.*\bstlxr w|\bstaddl? x|\bldaddal? x",
        "r5 = atomic_fetch_add((u64 *)(r10 - 0x8), r5)": r"\bldxr x.*\badd x.*\bstlxr w|\bldaddal x",
        "w0 = cmpxchg32_32(r10 - 0x4, w0, w5)": r"\bldxr w.*\bcmp w.*\bstlxr w|\bcasal w",
        "r5 = xchg_64(r10 - 0x8, r5)": r"\bldxr x.*\bstlxr w|\bswpal x",
        "call 0x5": r"\bblr x",
    },
}
NATIVE_ROW = re.compile(r"^ +0x([0-9a-f]+):  ")
BPF_ROW = re.compile(r"^ *(\d+):[ \t](.*)$")


def run(*argv):
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)}: exit {done.returncode}\n{done.stderr}")
    return done.stdout


def listing_rows(listing):
    """(offset, text) of each native row, the code's bytes, the BPF rows, and per BPF row
    the native text under it."""
    native, code, bpf, under = [], bytearray(), [], {}
    for line in listing.splitlines():
        if NATIVE_ROW.match(line):
            offset, hex_bytes, text = re.split(r"  +", line.strip(), maxsplit=2)
            native.append((int(offset[:-1], 16), text))
            code += bytes.fromhex(hex_bytes)
            if bpf:
                under[bpf[-1]].append(text)
        elif m := BPF_ROW.match(line):
            bpf.append((int(m[1]), m[2]))
            under[bpf[-1]] = []
    return native, bytes(code), bpf, under


def objdump_rows(engine, code, objcopy, objdump):
    with tempfile.TemporaryDirectory() as tmp:
        raw, obj = Path(tmp, "code.bin"), Path(tmp, "code.o")
        raw.write_bytes(code)
        run(objcopy, "-I", "binary", "-O", ELF_FORMAT[engine], str(raw), str(obj))
        text = run(objdump, "-D", "-z", "-j", ".data", str(obj))
    rows = []
    for line in text.splitlines():
        m = re.match(r"^ *([0-9a-f]+):[^\t]*\t(.*)$", line)
        if not m:
            continue
        insn = COMMENT[engine].sub("", m[2])
        insn = re.sub(r"(0x[0-9a-f]+) <[^>]*>", r"\1", insn)  # the symbol after a branch target
        rows.append((int(m[1], 16), " ".join(insn.split())))
    return rows


def check(bpfvm, objcopy, objdump, engine, file, seen):
    path, _, program = file.partition("@")
    select = [path, "--program", program] if program else [path]
    native, code, bpf, under = listing_rows(run(bpfvm, "disasm", *select, "--jit", "--engine", engine))
    if not native:
        return [f"{file}: no machine code in the listing"]
    reference = objdump_rows(engine, code, objcopy, objdump)
    problems = []
    for ours, theirs in zip(native, reference):
        if ours != theirs:
            problems.append(f"{file}: bpfvm {ours[0]:#x}: {ours[1]!r}, llvm-objdump {theirs[0]:#x}: {theirs[1]!r}")
    if len(native) != len(reference):
        problems.append(f"{file}: {len(native)} native rows, llvm-objdump has {len(reference)}")
    plain_listing = run(bpfvm, "disasm", *select, "--no-bytes").splitlines()
    plain = [(int(m[1]), m[2]) for m in map(BPF_ROW.match, plain_listing) if m]
    if bpf != plain:
        problems.append(f"{file}: the BPF rows differ from `bpfvm disasm {file}`:\n  {bpf}\n  {plain}")
    for (pc, text), rows in under.items():
        work = WORK[engine].get(text)
        seen.add(text)
        if work and not re.search(work, "; ".join(rows)):
            problems.append(f"{file}: the code of {pc}: {text} has no /{work}/: {rows}")
    print(f"{file}: {len(bpf)} BPF instructions, {len(native)} native ({len(code)} bytes)")
    return problems[:20]


def main():
    if len(sys.argv) < 6 or sys.argv[4] not in ELF_FORMAT:
        sys.exit(__doc__)
    bpfvm, objcopy, objdump, engine = sys.argv[1:5]
    seen = set()
    problems = [p for file in sys.argv[5:] for p in check(bpfvm, objcopy, objdump, engine, file, seen)]
    problems += [f"no program has `{text}`" for text in WORK[engine] if text not in seen]
    print("\n".join(problems) if problems else "ok")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
