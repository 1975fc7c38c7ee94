// Golden test: our LLVM text of every instruction of compiled BPF objects equals llvm-objdump-19's.
// The objects are the corpus (build/bpf/*.o, when built) and C snippets compiled here with clang-19.
#include <array>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <unistd.h>
#include <catch2/catch.hpp>

#include "isa/disasm.hpp"

using namespace bpfvm::isa;
namespace fs = std::filesystem;

namespace {

const char* const snippets[] = {
    R"(long f(long *p, int *q, short *s, signed char *c, unsigned long x) {
         __sync_fetch_and_add(p, 3); long old = __sync_fetch_and_add(p, x);
         __sync_fetch_and_or(q, 1); int o = __sync_fetch_and_xor(q, 5);
         __sync_fetch_and_and(p, x); old += __sync_lock_test_and_set(p, 9);
         old += __sync_val_compare_and_swap(p, 1, 2); o += __sync_val_compare_and_swap(q, 7, 8);
         return old + o + *s + *c + __builtin_bswap64(x) + __builtin_bswap32((unsigned)x) + (short)x; })",
    R"(static __attribute__((noinline)) int g(int a, int b) { return (unsigned)a / (unsigned)b + (unsigned)a % 3u + (a >> 3) - (b << 2); }
       int h(unsigned a, int b, long c, unsigned long d) {
         int r = 0;
         for (int i = 0; i < 10; i++) { if (a > (unsigned)i) r += g(i, b); if (c < -5) r ^= 0x7fffffff; }
         if (d >= 0xfffffffffull) r |= 1; if (b == -1) r -= 7; if ((a & 4) && d != 3) r *= 3;
         return r + (int)(d / 7) + (int)((unsigned long)c % 11) + (int)(c >> 7) + (int)(d >> 60); })",
    R"(struct s { unsigned char a; unsigned short b; unsigned int c; unsigned long d; };
       long k(struct s *p, long x) {
         p->a = 1; p->b = 0x1234; p->c = 0xdeadbeef; p->d = 0x123456789abcdefull;
         p->a = x; p->b = x; p->c = x; p->d = -x;
         long sum = 0; char buf[64]; for (int i = 0; i < 64; i++) buf[i] = i * x;
         for (int i = 0; i < 64; i += 5) sum += buf[i];
         return sum + p->a + p->b + p->c + p->d + (x > 100 ? -x : x * 0x10001); })",
    // -mcpu=v4 only: signed division and modulo.
    R"(long m(long a, long b, int c, int d) { return a / b + a % b + c / d + c % d + a / -3 + c % 7; })",
};

std::string run(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  std::array<char, 4096> buf{};
  while (std::size_t n = fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  pclose(p);
  return out;
}

// Compares every instruction line of `llvm-objdump-19 -d [--mattr=+alu32] object`.
void compare_with_objdump(const fs::path& object, bool alu32) {
  std::string dump =
      run(fmt::format("llvm-objdump-19 -d {} '{}' 2>&1", alu32 ? "--mattr=+alu32" : "", object.string()));
  std::size_t compared = 0;
  std::size_t at = 0;
  while (at < dump.size()) {
    std::size_t nl = dump.find('\n', at);
    if (nl == std::string::npos) nl = dump.size();
    std::string line = dump.substr(at, nl - at);
    at = nl + 1;
    // "      12:\t07 01 00 00 05 00 00 00\tr1 += 0x5"
    auto tab1 = line.find(":\t");
    if (tab1 == std::string::npos) continue;
    auto tab2 = line.find('\t', tab1 + 2);
    if (tab2 == std::string::npos) continue;
    std::vector<std::uint8_t> bytes;
    for (std::size_t i = tab1 + 2; i + 1 < tab2; i += 3)
      bytes.push_back(static_cast<std::uint8_t>(std::stoul(line.substr(i, 2), nullptr, 16)));
    if (bytes.empty() || bytes.size() % 8 != 0) continue;
    std::string theirs = line.substr(tab2 + 1);
    if (auto lt = theirs.rfind(" <");
        theirs.ends_with(">") && lt != std::string::npos && lt + 2 < theirs.size() &&
        (std::isalpha(static_cast<unsigned char>(theirs[lt + 2])) || theirs[lt + 2] == '_'))
      theirs.resize(lt);  // a <symbol+0x10> annotation
    // Plain objdump cannot print 32-bit fetch atomics; the alu32 pass covers them.
    if (theirs == "<unknown>") continue;
    std::vector<Insn> insns(bytes.size() / 8);
    std::memcpy(insns.data(), bytes.data(), bytes.size());
    std::string ours = format_insn(insns, 0, Syntax::llvm, alu32);
    if (auto hint = ours.find(" # "); hint != std::string::npos)
      ours.resize(hint);  // call kind: not printed by LLVM
    INFO(object.string() << (alu32 ? " (alu32): " : ": ") << line);
    CHECK(ours == theirs);
    ++compared;
  }
  INFO(object.string());
  CHECK(compared > 0);
}

}  // namespace

TEST_CASE("LLVM text of compiled objects equals llvm-objdump-19 -d") {
  if (std::system("llvm-objdump-19 --version > /dev/null 2>&1") != 0 ||
      std::system("clang-19 --version > /dev/null 2>&1") != 0) {
    WARN("clang-19 or llvm-objdump-19 not found: objdump golden test skipped");
    return;
  }
  std::vector<fs::path> objects;
  fs::path dir = fs::temp_directory_path() / fmt::format("bpfvm_text_objdump_{}", ::getpid());
  fs::create_directories(dir);
  for (std::size_t i = 0; i < std::size(snippets); ++i) {
    bool v4_only = i + 1 == std::size(snippets);
    for (const char* cpu : {"v3", "v4"}) {
      if (v4_only && std::string_view(cpu) != "v4") continue;
      fs::path c = dir / fmt::format("s{}.c", i), o = dir / fmt::format("s{}_{}.o", i, cpu);
      std::ofstream(c) << snippets[i] << "\n";
      std::string err = run(
          fmt::format("clang-19 -target bpf -O2 -mcpu={} -c '{}' -o '{}' 2>&1", cpu, c.string(), o.string()));
      INFO(err);
      REQUIRE(fs::exists(o));
      objects.push_back(o);
    }
  }
  fs::path corpus = fs::path(BPFVM_BINARY_DIR) / "bpf";
  std::size_t corpus_objects = 0;
  if (fs::is_directory(corpus))
    for (const auto& e : fs::directory_iterator(corpus))
      if (e.path().extension() == ".o") {
        objects.push_back(e.path());
        ++corpus_objects;
      }
  if (corpus_objects == 0)
    WARN("no corpus objects in " << corpus.string() << ": only the snippets are compared");
  for (const auto& o : objects)
    for (bool alu32 : {false, true}) compare_with_objdump(o, alu32);
  fs::remove_all(dir);
}
