// The runtime every engine shares: memory regions, traps, per-run state and the compiled
// program's interface.
//
// Threads: an Executable is immutable after compilation and may run on any number of threads
// at once; each run needs its own RunContext (registers, stack frames, regions, budget).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "isa/error.hpp"
#include "isa/program.hpp"
#include "vm/helpers.hpp"

namespace bpfvm::vm {

class Executable;
class MapSet;         // vm/maps.hpp
class PacketContext;  // vm/context.hpp

enum class Access : std::uint8_t { read = 1, write = 2, read_write = 3 };

// Host memory a program may touch. `name` must outlive the run (use a literal or a string
// the embedder keeps).
struct Region {
  std::uint64_t start = 0;
  std::uint64_t size = 0;
  Access access = Access::read;
  std::string_view name;
};

enum class TrapKind {
  out_of_bounds,     // a load, store or atomic outside every region
  permission,        // inside a region that does not allow the access (a store to read-only)
  budget_exhausted,  // the instruction budget ran out
  call_depth,        // a bpf-to-bpf call beyond the maximum depth
  unknown_helper,    // `call N` of a helper the registry does not hold
  bad_call_target,   // `callx` with a register that names no helper
  helper_error,      // a helper reported failure
  entry_mismatch,    // a verified program's run does not match the environment it was verified for
};
std::string_view to_string(TrapKind);

struct Trap {
  TrapKind kind = TrapKind::out_of_bounds;
  std::size_t pc = 0;         // the instruction that trapped
  std::uint64_t address = 0;  // memory traps: the first byte accessed; callx: the register value
  std::uint32_t size = 0;     // memory traps: the access size in bytes
  std::string region;         // the region violated or nearest to the miss ("" when none)
  std::string detail;         // helper_error: the helper's message; entry_mismatch: what differs
  // One sentence: "out of bounds: 4-byte read at 0x... (pc 12, near region "input")".
  std::string message() const;
};

inline constexpr int register_count = 11;
using Registers = std::array<std::uint64_t, register_count>;

struct RunResult {
  std::uint64_t r0 = 0;
  std::optional<Trap> trap;
  std::uint64_t executed = 0;  // instructions executed (including the trapping one)
  Registers regs{};            // r0..r10 at exit or at the trap
};

// Called before each executed instruction with its index and r0..r10 at that point (the
// registers after an instruction are the ones the next call sees, or RunResult::regs).
using TraceFn = std::function<void(std::size_t pc, const Registers& regs)>;

inline constexpr std::uint64_t default_budget = 10'000'000;
inline constexpr int default_max_call_depth = 8;

// The state of one run. Not shared between threads; reusable for successive runs (regions,
// budget and limits stay until changed).
class RunContext {
 public:
  RunContext() = default;

  // Embedder: memory the program may access, and r1..r5 at entry.
  void add_region(const Region& region) { regions_.push_back(region); }
  void clear_regions() { regions_.clear(); }
  std::span<const Region> regions() const { return regions_; }
  void set_args(std::array<std::uint64_t, 5> args) { args_ = args; }
  const std::array<std::uint64_t, 5>& args() const { return args_; }

  // Instructions a run may execute before it traps with budget_exhausted.
  void set_budget(std::uint64_t budget) { budget_ = budget; }
  std::uint64_t budget() const { return budget_; }
  // Frames, counting the entry function: 8 lets the entry call 7 levels deep. At least 1.
  void set_max_call_depth(int depth) { max_call_depth_ = depth < 1 ? 1 : depth; }
  int max_call_depth() const { return max_call_depth_; }

  void set_user(void* user) { user_ = user; }
  void* user() const { return user_; }
  void set_trace(TraceFn trace) { trace_ = std::move(trace); }
  const TraceFn& trace() const { return trace_; }

  // Helpers: report failure (the run stops with a helper_error trap after the call returns).
  void fail(std::string message) { failure_ = std::move(message); }
  const std::optional<std::string>& failure() const { return failure_; }

  // Helpers: true when [addr, addr + size) lies in the run's stack or in one region that allows
  // `need`. The Linux helpers check every pointer argument with it.
  bool can_access(std::uint64_t addr, std::uint64_t size, Access need) const;

  // The Linux helpers' state for this run (vm/linux_helpers.hpp): the maps their map arguments
  // must belong to (MapSet::attach sets it), the packet context the xdp helpers adjust, and
  // where trace_printk writes (nothing set: its output is dropped).
  void set_maps(const MapSet* maps) { maps_ = maps; }
  const MapSet* maps() const { return maps_; }
  void set_packet(PacketContext* packet) { packet_ = packet; }
  PacketContext* packet() const { return packet_; }
  void set_print(std::function<void(std::string_view)> print) { print_ = std::move(print); }
  const std::function<void(std::string_view)>& print() const { return print_; }

  // Tail calls. The tail_call helper requests one; the engine, seeing tail_call_pending() after
  // a helper returns, ends the current program as if it exited, and its run() hands the result
  // to follow_tail_calls(), which runs the requested programs in turn (no host recursion).
  void request_tail_call(std::shared_ptr<const Executable> target) {
    tail_call_ = std::move(target);
    ++tail_calls_;
  }
  bool tail_call_pending() const { return tail_call_ != nullptr; }
  // Tail calls taken in the current chain of programs (Linux allows 33).
  int tail_calls() const { return tail_calls_; }

  // Engines: the stack memory, max_call_depth frames of 512 bytes; frame 0 (the entry's) is
  // the highest, its r10 the end of the block. Clears the failure and any tail call request.
  std::span<std::uint8_t> prepare_run();

 private:
  std::vector<Region> regions_;
  std::array<std::uint64_t, 5> args_{};
  std::uint64_t budget_ = default_budget;
  int max_call_depth_ = default_max_call_depth;
  void* user_ = nullptr;
  TraceFn trace_;
  std::optional<std::string> failure_;
  std::vector<std::uint64_t> stack_;  // 8-byte aligned
  const MapSet* maps_ = nullptr;
  PacketContext* packet_ = nullptr;
  std::function<void(std::string_view)> print_;
  std::shared_ptr<const Executable> tail_call_;
  int tail_calls_ = 0;
  bool following_tail_calls_ = false;

  friend RunResult follow_tail_calls(RunContext& ctx, RunResult first);
};

// What lddw map_idx / map_idx_value resolve to: per map index of the program, the address an
// lddw map_idx loads and the address of the map's value (map_idx_value adds its offset).
struct MapAddress {
  std::uint64_t map = 0;
  std::uint64_t value = 0;
};

struct CompileOptions {
  std::vector<MapAddress> maps;  // indexed like isa::Program::maps
  int cpu_version = 4;
  // JITs: emit every constant of the program xor a random key (undone at run time), so that
  // the program's immediates never appear in executable memory.
  bool blind_constants = false;
  // Per pc: the load, store or atomic there was proven in bounds by the verifier, so the engine
  // leaves its check out. Empty: every access is checked. Only the embedding API's verified
  // compile fills it (from a verifier::VerifiedProgram, with an entry check on each run);
  // Vm::compile() refuses it otherwise.
  std::vector<bool> proven_accesses;
  // false: the engines count no instructions, so the run's budget is not enforced and
  // RunResult::executed is 0. Only a verified compile may turn it off (the verifier proved
  // that every loop ends); Vm::compile() refuses it otherwise.
  bool enforce_budget = true;

  bool proven(std::size_t pc) const { return pc < proven_accesses.size() && proven_accesses[pc]; }
};

// The 64-bit value the lddw `first`, `second` (decoded as `op`) loads: its immediate, or the
// address of the map or map value it names. Every engine resolves lddw through this. Fails for
// map indices `options` has no address for and for source kinds the loaders resolve away.
Result<std::uint64_t> lddw_operand(const isa::Insn& first, const isa::Insn& second, isa::Op op,
                                   const CompileOptions& options);

// A compiled program. Immutable; run() is safe to call concurrently with distinct contexts.
class Executable {
 public:
  virtual ~Executable();
  virtual RunResult run(RunContext& ctx) const = 0;
};

inline constexpr int max_tail_calls = 33;  // MAX_TAIL_CALL_CNT in Linux

// Engines call this at the end of run(): while the finished program requested a tail call, runs
// the target on the same context with r1 = the tail call's context argument and the budget that
// is left. `executed` adds up over the chain. Inside a chain (the target's own run()) it
// returns `first` unchanged: the outermost call continues the chain.
RunResult follow_tail_calls(RunContext& ctx, RunResult first);

}  // namespace bpfvm::vm
