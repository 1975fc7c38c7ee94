# Instructions whose machine code is not a single plain move or add, for `bpfvm disasm --jit`
# against llvm-objdump-19: a 64-bit constant, signed and unsigned division and modulo, shifts
# and byte swaps, atomics (with and without fetch, cmpxchg), a helper call and a callx
# (helper 5 returns its first argument), and a bpf-to-bpf call.
  r6 = 0x1122334455667788 ll
  r7 = r1
  r2 = 1000
  r3 = 7
  r2 /= r3
  w2 s/= w3
  r2 s%= r3
  w4 = w2
  w4 %= 3
  r4 <<= r3
  r4 s>>= r3
  r4 = be16 r4
  r4 = bswap64 r4
  *(u64 *)(r10 - 8) = r6
  r5 = 1
  lock *(u64 *)(r10 - 8) += r5
  r5 = atomic_fetch_add((u64 *)(r10 - 8), r5)
  w0 = 3
  w0 = cmpxchg32_32(r10 - 4, w0, w5)
  r5 = xchg_64(r10 - 8, r5)
  r1 = r2
  call 5
  r8 = 5
  callx r8
  call add_one
  exit
add_one:
  r0 += 1
  exit
