#include "vm/runtime.hpp"

#include <fmt/format.h>

#include "isa/isa.hpp"

namespace bpfvm::vm {

std::string_view to_string(TrapKind kind) {
  switch (kind) {
    case TrapKind::out_of_bounds: return "out of bounds";
    case TrapKind::permission: return "permission";
    case TrapKind::budget_exhausted: return "budget exhausted";
    case TrapKind::call_depth: return "call depth";
    case TrapKind::unknown_helper: return "unknown helper";
    case TrapKind::bad_call_target: return "bad call target";
    case TrapKind::helper_error: return "helper error";
    case TrapKind::entry_mismatch: return "entry mismatch";
  }
  return "trap";
}

std::string Trap::message() const {
  switch (kind) {
    case TrapKind::out_of_bounds:
      return fmt::format(
          "out of bounds: {}-byte access at {:#x} (pc {}{})", size, address, pc,
          region.empty() ? std::string(", no region near") : fmt::format(", near region \"{}\"", region));
    case TrapKind::permission:
      return fmt::format("permission: {}-byte access at {:#x} not allowed in region \"{}\" (pc {})", size,
                         address, region, pc);
    case TrapKind::budget_exhausted: return fmt::format("budget exhausted at pc {}", pc);
    case TrapKind::call_depth: return fmt::format("call depth limit exceeded at pc {}", pc);
    case TrapKind::unknown_helper: return fmt::format("unknown helper {} at pc {}", address, pc);
    case TrapKind::bad_call_target:
      return fmt::format("callx to {:#x}, which names no helper (pc {})", address, pc);
    case TrapKind::helper_error: return fmt::format("helper failed at pc {}: {}", pc, detail);
    case TrapKind::entry_mismatch:
      return fmt::format("entry does not match the verified environment: {}", detail);
  }
  return "trap";
}

std::span<std::uint8_t> RunContext::prepare_run() {
  const std::size_t words = static_cast<std::size_t>(max_call_depth_) * isa::stack_frame_size / 8;
  if (stack_.size() != words) stack_.assign(words, 0);
  failure_.reset();
  tail_call_.reset();  // a request left by an engine that does not follow tail calls
  return {reinterpret_cast<std::uint8_t*>(stack_.data()), words * 8};
}

bool RunContext::can_access(std::uint64_t addr, std::uint64_t size, Access need) const {
  const std::uint64_t end = addr + size;
  if (end < addr) return false;
  const auto stack_lo = reinterpret_cast<std::uint64_t>(stack_.data());
  if (!stack_.empty() && addr >= stack_lo && end <= stack_lo + stack_.size() * 8) return true;
  for (const Region& r : regions_) {
    if (addr >= r.start && end <= r.start + r.size)
      return (static_cast<unsigned>(r.access) & static_cast<unsigned>(need)) == static_cast<unsigned>(need);
  }
  return false;
}

Executable::~Executable() = default;

RunResult follow_tail_calls(RunContext& ctx, RunResult first) {
  if (ctx.following_tail_calls_ || !ctx.tail_call_) {
    if (!ctx.following_tail_calls_) ctx.tail_calls_ = 0;
    return first;
  }
  ctx.following_tail_calls_ = true;
  const std::uint64_t budget = ctx.budget();
  RunResult result = std::move(first);
  std::uint64_t executed = result.executed;
  while (ctx.tail_call_ && !result.trap) {
    std::shared_ptr<const Executable> next = std::move(ctx.tail_call_);
    ctx.tail_call_.reset();
    ctx.budget_ = budget - executed;
    result = next->run(ctx);
    executed += result.executed;
  }
  result.executed = executed;
  ctx.tail_call_.reset();
  ctx.budget_ = budget;
  ctx.tail_calls_ = 0;
  ctx.following_tail_calls_ = false;
  return result;
}

Result<std::uint64_t> lddw_operand(const isa::Insn& first, const isa::Insn& second, isa::Op op,
                                   const CompileOptions& options) {
  const isa::OpInfo& info = isa::info(op);
  switch (info.operation) {
    case isa::Operation::imm64: return isa::lddw_value(first, second);
    case isa::Operation::map_idx:
    case isa::Operation::map_idx_value: {
      const auto index = static_cast<std::uint32_t>(first.imm);
      if (index >= options.maps.size())
        return Error{fmt::format("lddw refers to map {} but {}", index,
                                 options.maps.empty()
                                     ? std::string("no maps are configured")
                                     : fmt::format("{} maps are configured", options.maps.size()))};
      return info.operation == isa::Operation::map_idx
                 ? options.maps[index].map
                 : options.maps[index].value + static_cast<std::uint32_t>(second.imm);
    }
    default:
      return Error{
          fmt::format("lddw source kind {} is not supported (loaders resolve maps to map_idx / "
                      "map_idx_value)",
                      isa::to_string(info.operation))};
  }
}

}  // namespace bpfvm::vm
