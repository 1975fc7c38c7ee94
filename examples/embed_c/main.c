/* Embedding bpfvm from C: load a program, register a helper, run it on some memory, and read
 * the result and a trap. Exits 0 when every outcome is the expected one. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "api/bpfvm.h"

/* Helper 1000: returns its first argument times the multiplier it was registered with. */
static uint64_t scale(void* user, uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5) {
  (void)r2, (void)r3, (void)r4, (void)r5;
  return r1 * *(const uint64_t*)user;
}

/* Instruction words (RFC 9669): opcode, dst | src << 4, 16-bit offset, 32-bit immediate. */
#define INSN(op, dst, src, off, imm)                                                                   \
  (uint8_t)(op), (uint8_t)((dst) | (src) << 4), (uint8_t)(off), (uint8_t)((off) >> 8), (uint8_t)(imm), \
      (uint8_t)((imm) >> 8), (uint8_t)((imm) >> 16), (uint8_t)((imm) >> 24)

static int check(bpfvm_program* p, bpfvm_status s, const char* what) {
  if (s == BPFVM_OK) return 1;
  fprintf(stderr, "%s: %s: %s\n", what, bpfvm_status_string(s), bpfvm_last_error(p));
  return 0;
}

int main(void) {
  /* r1 = *(u32 *)(r1 + off); r0 = helper_1000(r1); exit */
  const uint8_t code[] = {
      INSN(0x61, 1, 1, 0, 0),    /* ldxw r1, [r1+0] */
      INSN(0x85, 0, 0, 0, 1000), /* call 1000 */
      INSN(0x95, 0, 0, 0, 0),    /* exit */
  };
  uint64_t multiplier = 2;
  int ok = 1;

  bpfvm_program* p = bpfvm_create();
  if (!p) return 2;
  ok &= check(p, bpfvm_load_bytes(p, code, sizeof code, NULL), "load");
  ok &= check(p, bpfvm_register_helper(p, 1000, "scale", scale, &multiplier), "register_helper");
  ok &= check(p, bpfvm_set_engine(p, "interp"), "set_engine");
  ok &= check(p, bpfvm_compile(p), "compile");
  if (!ok) {
    bpfvm_destroy(p);
    return 1;
  }

  uint32_t input = 21;
  bpfvm_result result;
  bpfvm_status s = bpfvm_run(p, &input, sizeof input, &result);
  printf("run: %s, r0 = %llu\n", bpfvm_status_string(s), (unsigned long long)result.r0);
  if (s != BPFVM_OK || result.r0 != 42) ok = 0;

  /* Two bytes of memory are too few for a 4-byte load: a trap at instruction 0. */
  s = bpfvm_run(p, &input, 2, &result);
  printf("short run: %s, trap: %s\n", bpfvm_status_string(s), result.trapped ? result.trap.message : "none");
  if (s != BPFVM_ERR_TRAP || !result.trapped || result.trap.pc != 0 || result.trap.size != 4) ok = 0;

  /* An unknown engine is refused with a message. */
  s = bpfvm_set_engine(p, "no-such-engine");
  printf("set_engine(no-such-engine): %s: %s\n", bpfvm_status_string(s), bpfvm_last_error(p));
  if (s != BPFVM_ERR_ARGUMENT || strlen(bpfvm_last_error(p)) == 0) ok = 0;

  bpfvm_destroy(p);
  puts(ok ? "embed_c: ok" : "embed_c: FAILED");
  return ok ? 0 : 1;
}
