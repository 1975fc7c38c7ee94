/* Switch dispatch: a tiny accumulator machine whose opcodes are the input bytes, a 16-way
 * switch per byte (a jump table natively, a compare tree in BPF).
 * Input: 4096 bytes, random. */
#include "bench.h"

u64 bpf_main(void* mem, u64 len) {
  const u8* code = (const u8*)mem;
  u64 a = 1, b = 2, c = 3;
  for (u64 pc = 0; pc < len; pc++) {
    u8 insn = code[pc];
    u64 k = insn >> 4;
    switch (insn & 15) {
      case 0: a += k; break;
      case 1: a -= b; break;
      case 2: a ^= c; break;
      case 3: a <<= k & 7; break;
      case 4: a >>= k & 7; break;
      case 5: a *= 2654435761u; break;
      case 6: b += a; break;
      case 7: c ^= a >> 3; break;
      case 8: {
        u64 t = a;
        a = b;
        b = t;
      } break;
      case 9: a = (a << 13) | (a >> 51); break;
      case 10: c += k * 7; break;
      case 11: a &= b | c; break;
      case 12: a |= k; break;
      case 13: b = b * 5 + 1; break;
      case 14: a = ~a; break;
      default: c = c + a + b; break;
    }
  }
  return a ^ (b << 1) ^ (c << 2);
}
