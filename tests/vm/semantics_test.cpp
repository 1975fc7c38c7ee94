// Instruction semantics (RFC 9669), with expectations computed by hand.
#include <array>
#include <cstdint>
#include <cstring>

#include "tests/vm/vm_test_util.hpp"

using bpfvm::test::r0_of;

TEST_CASE("64-bit ALU sign-extends immediates and wraps", "[vm][alu]") {
  CHECK(r0_of("r0 = -1\nexit") == 0xffffffffffffffffULL);
  CHECK(r0_of("r0 = 1\nr0 += -2\nexit") == 0xffffffffffffffffULL);
  CHECK(r0_of("r0 = 3\nr0 *= -1\nexit") == static_cast<std::uint64_t>(-3));
  CHECK(r0_of("r0 = 0xff\nr0 &= -16\nexit") == 0xf0);
  CHECK(r0_of("r0 = 5\nr0 = -r0\nexit") == static_cast<std::uint64_t>(-5));
  CHECK(r0_of("r0 = 0\nr0 |= -1\nr0 ^= 0xf\nexit") == 0xfffffffffffffff0ULL);
}

TEST_CASE("32-bit ALU zero-extends its results", "[vm][alu]") {
  CHECK(r0_of("r0 = -1\nw0 += 1\nexit") == 0);
  CHECK(r0_of("r0 = -1\nw0 = w0\nexit") == 0xffffffff);
  CHECK(r0_of("w0 = -1\nexit") == 0xffffffff);
  CHECK(r0_of("r0 = 2\nw0 = -w0\nexit") == 0xfffffffe);
  CHECK(r0_of("r0 = -1\nw0 s>>= 4\nexit") == 0xffffffff);
}

TEST_CASE("division and modulo by zero, signed overflow", "[vm][divmul]") {
  CHECK(r0_of("r0 = 7\nr1 = 0\nr0 /= r1\nexit") == 0);
  CHECK(r0_of("r0 = 7\nr1 = 0\nr0 %= r1\nexit") == 7);
  CHECK(r0_of("r0 = -1\nw1 = 0\nw0 %= w1\nexit") == 0xffffffff);  // dst kept, zero-extended
  CHECK(r0_of("r0 = 7\nw0 /= 0\nexit") == 0);
  CHECK(r0_of("r0 = 1\nr0 <<= 63\nr1 = -1\nr0 s/= r1\nexit") == 0x8000000000000000ULL);
  CHECK(r0_of("r0 = 1\nr0 <<= 63\nr1 = -1\nr0 s%= r1\nexit") == 0);
  CHECK(r0_of("w0 = 0x80000000\nw0 s/= -1\nexit") == 0x80000000);
  CHECK(r0_of("w0 = 0x80000000\nw0 s%= -1\nexit") == 0);
  CHECK(r0_of("r0 = -7\nr0 s/= 2\nexit") == static_cast<std::uint64_t>(-3));
  CHECK(r0_of("r0 = -7\nr0 s%= 2\nexit") == static_cast<std::uint64_t>(-1));
  CHECK(r0_of("r0 = -7\nr0 s%= 0\nexit") == static_cast<std::uint64_t>(-7));
  CHECK(r0_of("r0 = -7\nr0 /= 2\nexit") == 0x7ffffffffffffffcULL);
}

TEST_CASE("shift counts are masked", "[vm][alu]") {
  CHECK(r0_of("r0 = 1\nr1 = 65\nr0 <<= r1\nexit") == 2);
  CHECK(r0_of("w0 = 1\nw1 = 33\nw0 <<= w1\nexit") == 2);
  CHECK(r0_of("r0 = -1\nr1 = 68\nr0 >>= r1\nexit") == 0x0fffffffffffffffULL);
  CHECK(r0_of("r0 = -16\nr1 = 66\nr0 s>>= r1\nexit") == static_cast<std::uint64_t>(-4));
}

TEST_CASE("byte swaps and movsx", "[vm][alu]") {
  CHECK(r0_of("r0 = 0x1122334455667788 ll\nr0 = be16 r0\nexit") == 0x8877);
  CHECK(r0_of("r0 = 0x1122334455667788 ll\nr0 = be32 r0\nexit") == 0x88776655);
  CHECK(r0_of("r0 = 0x1122334455667788 ll\nr0 = be64 r0\nexit") == 0x8877665544332211ULL);
  CHECK(r0_of("r0 = 0x1122334455667788 ll\nr0 = le16 r0\nexit") == 0x7788);
  CHECK(r0_of("r0 = 0x1122334455667788 ll\nr0 = le32 r0\nexit") == 0x55667788);
  CHECK(r0_of("r0 = 0x1122334455667788 ll\nr0 = le64 r0\nexit") == 0x1122334455667788ULL);
  CHECK(r0_of("r0 = 0x1122334455667788 ll\nr0 = bswap16 r0\nexit") == 0x8877);
  CHECK(r0_of("r1 = 0x80\nr0 = (s8)r1\nexit") == 0xffffffffffffff80ULL);
  CHECK(r0_of("r1 = 0x8000\nw0 = (s16)w1\nexit") == 0xffff8000);
  CHECK(r0_of("r1 = 0x80000000 ll\nr0 = (s32)r1\nexit") == 0xffffffff80000000ULL);
}

TEST_CASE("loads, stores and sign-extending loads", "[vm][memory]") {
  std::array<std::uint8_t, 16> mem{};
  CHECK(r0_of("*(u32 *)(r1 + 0) = -2\nr0 = *(u32 *)(r1 + 0)\nexit", mem) == 0xfffffffe);
  CHECK(r0_of("r0 = *(s32 *)(r1 + 0)\nexit", mem) == 0xfffffffffffffffeULL);
  CHECK(r0_of("r2 = 0x81\n*(u8 *)(r1 + 3) = r2\nr0 = *(s8 *)(r1 + 3)\nexit", mem) == 0xffffffffffffff81ULL);
  CHECK(mem[3] == 0x81);
  CHECK(r0_of("*(u64 *)(r10 - 8) = 42\nr0 = *(u64 *)(r10 - 8)\nexit") == 42);
  CHECK(r0_of("r2 = 0x1234\n*(u16 *)(r10 - 2) = r2\nr0 = *(s16 *)(r10 - 2)\nexit") == 0x1234);
}

TEST_CASE("atomics", "[vm][atomic]") {
  std::array<std::uint8_t, 16> mem{};
  const std::uint64_t init = 0x10;
  std::memcpy(mem.data(), &init, 8);
  CHECK(r0_of("r2 = 5\nlock *(u64 *)(r1 + 0) += r2\nr0 = *(u64 *)(r1 + 0)\nexit", mem) == 0x15);
  CHECK(r0_of("r2 = 1\nr2 = atomic_fetch_add((u64 *)(r1 + 0), r2)\nr0 = r2\nexit", mem) == 0x15);
  CHECK(r0_of("r2 = 0xf0\nr2 = atomic_fetch_or((u64 *)(r1 + 0), r2)\nr0 = *(u64 *)(r1 + 0)\nexit", mem) ==
        0xf6);
  CHECK(r0_of("r2 = 0x0f\nlock *(u64 *)(r1 + 0) &= r2\nr0 = *(u64 *)(r1 + 0)\nexit", mem) == 0x06);
  CHECK(r0_of("r2 = 3\nr2 = atomic_fetch_xor((u64 *)(r1 + 0), r2)\nr0 = r2\nexit", mem) == 0x06);
  CHECK(r0_of("r2 = 9\nr2 = xchg_64(r1 + 0, r2)\nr0 = r2\nexit", mem) == 0x05);
  // cmpxchg: equal to r0 -> stores, r0 = old; different -> keeps memory, r0 = old.
  CHECK(r0_of("r0 = 9\nr2 = 11\nr0 = cmpxchg_64(r1 + 0, r0, r2)\nexit", mem) == 9);
  CHECK(r0_of("r0 = 1\nr2 = 12\nr0 = cmpxchg_64(r1 + 0, r0, r2)\nr0 = *(u64 *)(r1 + 0)\nexit", mem) == 11);
  // 32-bit forms work on the low word and zero-extend what they return.
  CHECK(r0_of("r2 = -1\nw2 = atomic_fetch_add((u32 *)(r1 + 8), w2)\nr0 = *(u32 *)(r1 + 8)\nexit", mem) ==
        0xffffffff);
  CHECK(r0_of("r0 = -1\nr2 = 7\nw0 = cmpxchg32_32(r1 + 8, w0, w2)\nexit", mem) == 0xffffffff);
  CHECK(r0_of("r0 = *(u32 *)(r1 + 8)\nexit", mem) == 7);
}

TEST_CASE("jumps: signed, unsigned, 32-bit and gotol", "[vm][jump]") {
  CHECK(r0_of("r0 = 0\nr1 = -1\nif r1 s< 0 goto +1\nexit\nr0 = 1\nexit") == 1);
  CHECK(r0_of("r0 = 0\nr1 = -1\nif r1 < 0 goto +1\nexit\nr0 = 1\nexit") == 0);
  CHECK(r0_of("r0 = 0\nw1 = -1\nif r1 == -1 goto +1\nexit\nr0 = 1\nexit") == 0);
  CHECK(r0_of("r0 = 0\nw1 = -1\nif w1 == -1 goto +1\nexit\nr0 = 1\nexit") == 1);
  CHECK(r0_of("r0 = 0\nr1 = 0x100000001 ll\nif w1 s> 0 goto +1\nexit\nr0 = 1\nexit") == 1);
  CHECK(r0_of("r0 = 0\nr1 = 6\nif r1 & 2 goto +1\nexit\nr0 = 1\nexit") == 1);
  CHECK(r0_of("r0 = 1\ngotol +1\nr0 = 2\nexit") == 1);
}

TEST_CASE("bpf-to-bpf calls get their own frame; r6-r9 survive", "[vm][call]") {
  const char* text = R"(
r6 = 6
r7 = 7
*(u64 *)(r10 - 8) = 100
r1 = 5
call fn
r0 += r6
r0 += r7
r1 = *(u64 *)(r10 - 8)
r0 += r1
exit
fn:
r6 = 60
r7 = 70
*(u64 *)(r10 - 8) = 1000
r0 = *(u64 *)(r10 - 8)
r0 += r1
exit
)";
  CHECK(r0_of(text) == 1005 + 6 + 7 + 100);
}

TEST_CASE("helpers: call by id and callx by the register's id", "[vm][call]") {
  CHECK(r0_of("r1 = 77\ncall 5\nexit") == 77);
  CHECK(r0_of("r1 = 78\nr2 = 5\ncallx r2\nexit") == 78);
}
