// The Linux helpers called from BPF code on the interpreter: maps, flags and errors, ring
// buffers, tail calls, trace_printk, global data, and the xdp / socket / tc contexts.
#include <catch2/catch.hpp>

#include <array>
#include <cstring>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "tests/vm/maps_test_util.hpp"
#include "vm/context.hpp"
#include "vm/maps.hpp"

namespace {

using bpfvm::isa::MapType;
using bpfvm::test::as_errno;
using bpfvm::test::compile_with_maps;
using bpfvm::test::map_def;
using bpfvm::test::map_ref;
using bpfvm::test::map_value_ref;
namespace vm = bpfvm::vm;
namespace e = bpfvm::vm::map_errno;

std::string subst(std::string text) {
  for (unsigned i = 0; i < 4; ++i) {
    const std::string mark = fmt::format("MAP({})", i);
    for (auto at = text.find(mark); at != std::string::npos; at = text.find(mark))
      text.replace(at, mark.size(), map_ref(i));
    for (unsigned off : {0u, 8u}) {
      const std::string vmark = fmt::format("MAPVALUE({},{})", i, off);
      for (auto at = text.find(vmark); at != std::string::npos; at = text.find(vmark))
        text.replace(at, vmark.size(), map_value_ref(i, off));
    }
  }
  return text;
}

vm::RunResult run_ok(const vm::Executable& exe, std::span<std::uint8_t> memory = {}) {
  vm::RunResult r = bpfvm::run(exe, memory);
  INFO((r.trap ? r.trap->message() : std::string()));
  REQUIRE_FALSE(r.trap.has_value());
  return r;
}

const char* const count_program = R"(
  *(u32 *)(r10 - 4) = 0
  r2 = r10
  r2 += -4
  r1 = MAP(0) ll
  call 1
  if r0 == 0 goto missing
  r1 = 1
  lock *(u64 *)(r0 + 0) += r1
  r0 = *(u64 *)(r0 + 0)
  exit
missing:
  r0 = -1
  exit
)";

}  // namespace

TEST_CASE("map_lookup_elem from BPF: the value pointer is usable and the host sees the count",
          "[helpers][maps]") {
  bpfvm::Vm vmx;
  auto exe = compile_with_maps(vmx, subst(count_program), {map_def("counts", MapType::array, 4, 8, 1)});
  for (std::uint64_t i = 1; i <= 10; ++i) CHECK(run_ok(*exe).r0 == i);
  vm::Map* counts = vmx.maps()->find("counts");
  REQUIRE(counts != nullptr);
  std::uint32_t key = 0;
  std::uint64_t value = 0;
  REQUIRE(counts->host_lookup(&key, &value) == 0);
  CHECK(value == 10);
}

TEST_CASE("map_update_elem / delete from BPF return Linux's errors", "[helpers][maps]") {
  const std::string update = subst(R"(
    r6 = r1
    r4 = *(u64 *)(r6 + 0)
    *(u32 *)(r10 - 4) = 7
    *(u64 *)(r10 - 16) = 42
    r2 = r10
    r2 += -4
    r3 = r10
    r3 += -16
    r1 = MAP(0) ll
    r7 = *(u64 *)(r6 + 8)
    if r7 != 0 goto remove
    call 2
    exit
  remove:
    call 3
    exit
  )");
  bpfvm::Vm vmx;
  auto exe = compile_with_maps(vmx, update, {map_def("h", MapType::hash, 4, 8, 1)});
  auto call = [&](std::uint64_t flags, bool remove) {
    std::array<std::uint64_t, 2> input{flags, remove ? 1u : 0u};
    return run_ok(*exe, {reinterpret_cast<std::uint8_t*>(input.data()), sizeof input}).r0;
  };
  CHECK(call(vm::update_exist, false) == as_errno(e::noent));
  CHECK(call(vm::update_noexist, false) == 0);
  CHECK(call(vm::update_noexist, false) == as_errno(e::exists));
  CHECK(call(vm::update_any, false) == 0);
  CHECK(call(9, false) == as_errno(e::inval));
  CHECK(call(0, true) == 0);
  CHECK(call(0, true) == as_errno(e::noent));
  // Full: a second key does not fit in a one-entry hash.
  std::uint32_t other = 8;
  std::uint64_t v = 1;
  REQUIRE(vmx.maps()->find("h")->host_update(&other, &v, vm::update_any) == 0);
  CHECK(call(vm::update_any, false) == as_errno(e::too_big));
}

TEST_CASE("helpers refuse a map or pointer the program does not own", "[helpers][maps]") {
  bpfvm::Vm vmx;
  auto bad_map = compile_with_maps(vmx, "*(u64 *)(r10 - 8) = 0\nr2 = r10\nr2 += -8\nr1 = 1234\ncall 1\nexit",
                                   {map_def("h", MapType::hash, 8, 8, 4)});
  vm::RunResult r = bpfvm::run(*bad_map, {});
  REQUIRE(r.trap.has_value());
  CHECK(r.trap->kind == vm::TrapKind::helper_error);
  CHECK(r.trap->detail.find("map_lookup_elem") != std::string::npos);
  CHECK(r.trap->pc == 4);

  bpfvm::Vm vmy;
  auto bad_key = compile_with_maps(vmy, subst("r1 = MAP(0) ll\nr2 = 4096\ncall 1\nexit"),
                                   {map_def("h", MapType::hash, 8, 8, 4)});
  r = bpfvm::run(*bad_key, {});
  REQUIRE(r.trap.has_value());
  CHECK(r.trap->detail.find("key") != std::string::npos);
}

TEST_CASE("ring buffer from BPF: reserve/submit and output, read by the host", "[helpers][ringbuf]") {
  const std::string produce = subst(R"(
    r1 = MAP(0) ll
    r2 = 16
    r3 = 0
    call 131
    if r0 == 0 goto full
    r1 = 0x1122334455667788 ll
    *(u64 *)(r0 + 0) = r1
    *(u64 *)(r0 + 8) = r1
    r1 = r0
    r2 = 0
    call 132
    *(u64 *)(r10 - 8) = 99
    r1 = MAP(0) ll
    r2 = r10
    r2 += -8
    r3 = 8
    r4 = 0
    call 130
    exit
  full:
    r0 = 1
    exit
  )");
  bpfvm::Vm vmx;
  auto exe = compile_with_maps(vmx, produce, {map_def("events", MapType::ringbuf, 0, 0, 64)});
  // Records take 8 header bytes: 24 + 16 = 40 bytes a run. The second run's reserve fills the 64
  // bytes exactly, so its output fails; the third run's reserve fails.
  CHECK(run_ok(*exe).r0 == 0);
  CHECK(run_ok(*exe).r0 == as_errno(e::again));
  CHECK(run_ok(*exe).r0 == 1);
  auto* ring = dynamic_cast<vm::RingBuffer*>(vmx.maps()->find("events"));
  REQUIRE(ring != nullptr);
  std::vector<std::size_t> sizes;
  std::uint64_t first = 0, last = 0;
  ring->consume([&](std::span<const std::uint8_t> rec) {
    sizes.push_back(rec.size());
    if (sizes.size() == 1) std::memcpy(&first, rec.data(), 8);
    std::memcpy(&last, rec.data(), 8);
  });
  CHECK(sizes == std::vector<std::size_t>{16, 8, 16});
  CHECK(first == 0x1122334455667788ull);
  CHECK(last == 0x1122334455667788ull);
  CHECK(ring->dropped() == 2);
}

TEST_CASE("ringbuf_submit of a pointer that is no record stops the run", "[helpers][ringbuf]") {
  bpfvm::Vm vmx;
  auto exe = compile_with_maps(vmx, "r1 = r10\nr1 += -8\nr2 = 0\ncall 132\nr0 = 0\nexit",
                               {map_def("events", MapType::ringbuf, 0, 0, 64)});
  vm::RunResult r = bpfvm::run(*exe, {});
  REQUIRE(r.trap.has_value());
  CHECK(r.trap->detail.find("ringbuf_submit") != std::string::npos);
}

TEST_CASE("tail calls: jump to the program in the slot, fall through when empty", "[helpers][tail_call]") {
  auto shared = std::make_shared<vm::MapSet>();
  const auto jumps = map_def("jumps", MapType::prog_array, 4, 4, 4);
  bpfvm::Vm caller, callee;
  caller.use_maps(shared);
  callee.use_maps(shared);
  auto a = compile_with_maps(caller, subst(R"(
    r6 = r1
    r3 = *(u32 *)(r6 + 0)
    r1 = r6
    r2 = MAP(0) ll
    call 12
    r0 = 7
    exit
  )"),
                             {jumps});
  auto b = compile_with_maps(callee, "r0 = *(u32 *)(r1 + 4)\nexit", {jumps});
  auto* programs = dynamic_cast<vm::ProgramArray*>(shared->find("jumps"));
  REQUIRE(programs != nullptr);
  REQUIRE(programs->set(1, b).ok());
  auto with_index = [&](std::uint32_t index) {
    std::array<std::uint32_t, 2> input{index, 42};
    return run_ok(*a, {reinterpret_cast<std::uint8_t*>(input.data()), sizeof input});
  };
  const vm::RunResult taken = with_index(1);
  CHECK(taken.r0 == 42);
  CHECK(taken.executed == 5 + 2);  // the caller up to its call (lddw counts once), then the callee
  CHECK(with_index(2).r0 == 7);    // empty slot
  CHECK(with_index(9).r0 == 7);    // past the end
  b.reset();                       // the array does not keep programs alive: the slot is empty now
  CHECK(with_index(1).r0 == 7);
}

TEST_CASE("tail calls: a chain stops after 33, as in Linux", "[helpers][tail_call]") {
  bpfvm::Vm vmx;
  auto self = compile_with_maps(
      vmx, subst(R"(
    r6 = r1
    *(u32 *)(r10 - 4) = 0
    r2 = r10
    r2 += -4
    r1 = MAP(1) ll
    call 1
    if r0 == 0 goto out
    r1 = 1
    lock *(u64 *)(r0 + 0) += r1
    r1 = r6
    r2 = MAP(0) ll
    r3 = 0
    call 12
  out:
    r0 = 5
    exit
  )"),
      {map_def("jumps", MapType::prog_array, 4, 4, 1), map_def("runs", MapType::array, 4, 8, 1)});
  REQUIRE(dynamic_cast<vm::ProgramArray*>(vmx.maps()->find("jumps"))->set(0, self).ok());
  CHECK(run_ok(*self).r0 == 5);
  std::uint32_t key = 0;
  std::uint64_t runs = 0;
  REQUIRE(vmx.maps()->find("runs")->host_lookup(&key, &runs) == 0);
  CHECK(runs == 1 + vm::max_tail_calls);
  // The count starts again with each run.
  CHECK(run_ok(*self).r0 == 5);
  REQUIRE(vmx.maps()->find("runs")->host_lookup(&key, &runs) == 0);
  CHECK(runs == 2 * (1 + vm::max_tail_calls));
}

TEST_CASE("trace_printk formats into the host's sink", "[helpers][printk]") {
  bpfvm::Vm vmx;
  std::vector<std::string> lines;
  vmx.set_print([&](std::string_view line) { lines.emplace_back(line); });
  std::string format = "v=%d h=%x %llu%%";
  std::vector<std::uint8_t> memory(format.begin(), format.end());
  memory.push_back(0);
  auto exe = compile_with_maps(vmx,
                               fmt::format(R"(
    r2 = {}
    r3 = -5
    r4 = 255
    r5 = 0x10000000000 ll
    call 6
    exit
  )",
                                           memory.size()),
                               {});
  const vm::RunResult r = run_ok(*exe, memory);
  REQUIRE(lines.size() == 1);
  CHECK(lines[0] == "v=-5 h=ff 1099511627776%");
  CHECK(r.r0 == lines[0].size());
}

TEST_CASE("time, random and processor id", "[helpers]") {
  bpfvm::Vm vmx;
  auto exe = compile_with_maps(vmx, "call 5\nr6 = r0\ncall 5\nr0 -= r6\nexit", {});
  CHECK(static_cast<std::int64_t>(run_ok(*exe).r0) >= 0);
  bpfvm::Vm vmy;
  auto cpu = compile_with_maps(vmy, "call 8\nexit", {});
  CHECK(run_ok(*cpu).r0 == static_cast<std::uint64_t>(vm::this_cpu()));
  bpfvm::Vm vmz;
  auto rnd = compile_with_maps(vmz, "call 7\nr6 = r0\ncall 7\nr0 ^= r6\nr0 |= r6\nexit", {});
  CHECK(run_ok(*rnd).r0 != 0);  // two 32-bit draws that are both zero: 2^-64
}

TEST_CASE("global data: .data is writable, .rodata is not", "[helpers][global]") {
  auto data = map_def(".data", MapType::array, 4, 8, 1);
  data.initial_value = {5, 0, 0, 0, 0, 0, 0, 0};
  auto rodata = map_def(".rodata", MapType::array, 4, 16, 1);
  rodata.read_only = true;
  rodata.initial_value = {9, 0, 0, 0, 0, 0, 0, 0, 11, 0, 0, 0, 0, 0, 0, 0};
  bpfvm::Vm vmx;
  auto exe = compile_with_maps(vmx, subst(R"(
    r1 = MAPVALUE(1,8) ll
    r2 = *(u64 *)(r1 + 0)
    r3 = MAPVALUE(0,0) ll
    r4 = *(u64 *)(r3 + 0)
    r2 += r4
    *(u64 *)(r3 + 0) = r2
    r0 = r2
    exit
  )"),
                               {data, rodata});
  CHECK(run_ok(*exe).r0 == 16);
  CHECK(run_ok(*exe).r0 == 27);
  bpfvm::Vm vmy;
  auto writer =
      compile_with_maps(vmy, subst("r1 = MAPVALUE(0,0) ll\n*(u64 *)(r1 + 0) = 1\nr0 = 0\nexit"), {rodata});
  const vm::RunResult r = bpfvm::run(*writer, {});
  REQUIRE(r.trap.has_value());
  CHECK(r.trap->kind == vm::TrapKind::permission);
  CHECK(r.trap->region == ".rodata");
}

namespace {

std::vector<std::uint8_t> frame(std::size_t size, std::uint16_t ethertype, std::uint8_t first) {
  std::vector<std::uint8_t> f(size, 0xab);
  f[0] = first;
  if (size >= 14) {
    f[12] = static_cast<std::uint8_t>(ethertype >> 8);
    f[13] = static_cast<std::uint8_t>(ethertype);
  }
  return f;
}

std::unique_ptr<vm::PacketContext> packet_context(vm::ContextKind kind) {
  auto ctx = vm::PacketContext::create(kind);
  INFO((ctx ? std::string() : ctx.error().to_string()));
  REQUIRE(ctx.ok());
  CHECK((*ctx)->address() + 70000 < (std::uint64_t{1} << 32));
  return std::move(ctx).value();
}

}  // namespace

TEST_CASE("xdp: data and data_end from the 32-bit fields, bounds-checked like the kernel wants",
          "[helpers][xdp]") {
  bpfvm::Vm vmx;
  auto exe = compile_with_maps(vmx, R"(
    r2 = *(u32 *)(r1 + 0)
    r3 = *(u32 *)(r1 + 4)
    r4 = r2
    r4 += 14
    if r4 > r3 goto pass
    r5 = *(u8 *)(r2 + 0)
    if r5 != 0xff goto pass
    r0 = 1
    exit
  pass:
    r0 = 2
    exit
  )",
                               {});
  auto packet = packet_context(vm::ContextKind::xdp);
  REQUIRE(packet->set_packet(frame(60, 0x0800, 0xff)).ok());
  CHECK(bpfvm::run_packet(*exe, *packet).r0 == 1);
  REQUIRE(packet->set_packet(frame(60, 0x0800, 0x01)).ok());
  CHECK(bpfvm::run_packet(*exe, *packet).r0 == 2);
  REQUIRE(packet->set_packet(frame(10, 0x0800, 0xff)).ok());
  CHECK(bpfvm::run_packet(*exe, *packet).r0 == 2);
  CHECK(vm::verdict_name(vm::ContextKind::xdp, 1) == "XDP_DROP");
  CHECK(vm::verdict_name(vm::ContextKind::xdp, 2) == "XDP_PASS");
}

TEST_CASE("xdp_adjust_head and xdp_adjust_tail move the packet's ends", "[helpers][xdp]") {
  bpfvm::Vm vmx;
  auto shrink = compile_with_maps(vmx, R"(
    r6 = r1
    r2 = 14
    call 44
    if r0 != 0 goto failed
    r1 = r6
    r2 = -10
    call 65
    if r0 != 0 goto failed
    r2 = *(u32 *)(r6 + 0)
    r3 = *(u32 *)(r6 + 4)
    r0 = r3
    r0 -= r2
    exit
  failed:
    exit
  )",
                                  {});
  auto packet = packet_context(vm::ContextKind::xdp);
  std::vector<std::uint8_t> bytes(60);
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::uint8_t>(i);
  REQUIRE(packet->set_packet(bytes).ok());
  CHECK(bpfvm::run_packet(*shrink, *packet).r0 == 60 - 14 - 10);
  REQUIRE(packet->packet().size() == 36);
  CHECK(packet->packet()[0] == 14);
  // Limits: at least 14 bytes stay; data stays within the headroom, data_end within the tailroom.
  REQUIRE(packet->set_packet(bytes).ok());
  CHECK(packet->adjust_head(47) == -e::inval);
  CHECK(packet->adjust_head(46) == 0);
  CHECK(packet->adjust_head(-46 - 257) == -e::inval);
  CHECK(packet->adjust_head(-46 - 256) == 0);
  CHECK(packet->packet().size() == 60 + 256);
  CHECK(packet->adjust_tail(-(60 + 256 - 13)) == -e::inval);
  const auto room =
      static_cast<std::int64_t>(vm::PacketContext::max_packet + vm::PacketContext::tailroom - 60);
  CHECK(packet->adjust_tail(room + 1) == -e::inval);
  CHECK(packet->adjust_tail(room) == 0);
}

TEST_CASE("socket filter and tc: __sk_buff fields and legacy packet loads", "[helpers][skb]") {
  bpfvm::Vm vmx;
  auto ethertype = compile_with_maps(vmx, "r6 = r1\nr0 = *(u16 *)skb[12]\nexit", {});
  auto packet = packet_context(vm::ContextKind::socket_filter);
  REQUIRE(packet->set_packet(frame(64, 0x86dd, 0)).ok());
  CHECK(bpfvm::run_packet(*ethertype, *packet).r0 == 0x86dd);

  bpfvm::Vm vmy;
  auto fields = compile_with_maps(vmy, R"(
    r2 = *(u32 *)(r1 + 0)
    r3 = *(u32 *)(r1 + 16)
    r4 = *(u32 *)(r1 + 76)
    r5 = *(u32 *)(r1 + 80)
    r5 -= r4
    if r5 != r2 goto bad
    r0 = r3
    r0 <<= 32
    r0 |= r2
    exit
  bad:
    r0 = 0
    exit
  )",
                                  {});
  auto tc = packet_context(vm::ContextKind::sched_cls);
  REQUIRE(tc->set_packet(frame(98, 0x0800, 0)).ok());
  // protocol is the Ethernet type in network byte order: bytes 08 00, a little-endian 0x0008.
  CHECK(bpfvm::run_packet(*fields, *tc).r0 == ((std::uint64_t{0x0008} << 32) | 98));
  CHECK(vm::verdict_name(vm::ContextKind::sched_cls, 2) == "TC_ACT_SHOT");
  CHECK(vm::verdict_name(vm::ContextKind::socket_filter, 0) == "drop");
}

TEST_CASE("skb_load_bytes copies packet bytes; out of range is -EFAULT", "[helpers][skb]") {
  bpfvm::Vm vmx;
  auto exe = compile_with_maps(vmx, R"(
    r6 = r1
    r1 = r6
    r2 = 12
    r3 = r10
    r3 += -8
    r4 = 2
    call 26
    if r0 != 0 goto failed
    r1 = r6
    r2 = 63
    r3 = r10
    r3 += -16
    r4 = 2
    call 26
    if r0 == 0 goto failed
    r0 = *(u16 *)(r10 - 8)
    exit
  failed:
    r0 = 0
    exit
  )",
                               {});
  auto packet = packet_context(vm::ContextKind::socket_filter);
  REQUIRE(packet->set_packet(frame(64, 0x86dd, 0)).ok());
  CHECK(bpfvm::run_packet(*exe, *packet).r0 == 0xdd86);  // the bytes 86 dd, read little-endian
}

TEST_CASE("ringbuf_query reports pending bytes and the size", "[helpers][ringbuf]") {
  bpfvm::Vm vmx;
  auto exe = compile_with_maps(vmx, subst(R"(
    *(u64 *)(r10 - 8) = 1
    r1 = MAP(0) ll
    r2 = r10
    r2 += -8
    r3 = 8
    r4 = 0
    call 130
    r1 = MAP(0) ll
    r2 = 0
    call 134
    r6 = r0
    r1 = MAP(0) ll
    r2 = 1
    call 134
    r0 <<= 32
    r0 |= r6
    exit
  )"),
                               {map_def("events", MapType::ringbuf, 0, 0, 256)});
  CHECK(run_ok(*exe).r0 == ((std::uint64_t{256} << 32) | 16));
}
