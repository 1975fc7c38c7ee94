/* Shared by every benchmark program: fixed-width types without libc headers (the BPF target has
 * none), and the entry point's signature. Each program is compiled twice from the same source:
 * to BPF (clang -target bpf) and to x86-64, where the driver renames bpf_main per build. */
#ifndef BPFVM_BENCH_H
#define BPFVM_BENCH_H

typedef __UINT8_TYPE__ u8;
typedef __UINT16_TYPE__ u16;
typedef __UINT32_TYPE__ u32;
typedef __UINT64_TYPE__ u64;
typedef __INT32_TYPE__ s32;
typedef __INT64_TYPE__ s64;

#define NOINLINE __attribute__((noinline))

/* The `raw` convention: r1 = input memory, r2 = its length in bytes, r0 = the result. */
u64 bpf_main(void* mem, u64 len);

/* Little-endian loads at any alignment. The BPF target has no misaligned loads, so clang emits
 * byte loads there; x86-64 fuses them into one. */
static inline u16 load16(const u8* p) { return (u16)(p[0] | (p[1] << 8)); }
static inline u32 load32(const u8* p) {
  return (u32)p[0] | ((u32)p[1] << 8) | ((u32)p[2] << 16) | ((u32)p[3] << 24);
}

#endif
