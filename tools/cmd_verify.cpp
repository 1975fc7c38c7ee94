// bpfvm verify FILE: prove a program safe for a program type, or say why not.
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "isa/load.hpp"
#include "tools/args.hpp"
#include "tools/commands.hpp"
#include "tools/json.hpp"
#include "tools/selection.hpp"
#include "tools/verify_options.hpp"
#include "verifier/verifier.hpp"

namespace bpfvm::cli {
namespace {

constexpr const char* verify_usage =
    "usage: bpfvm verify FILE [--section S | --program P] [--type raw|xdp|socket_filter|sched_cls] "
    "[--mem-size N] [-v] "
    "[--json]\n"
    "\n"
    "Verifies the program in FILE (ELF object, raw instructions or assembly text) for a program type.\n"
    "  --section S    the program to verify when FILE holds several: a section name (xdp, ...)\n"
    "  --program P    ... or a function name (`bpfvm list FILE` shows both)\n"
    "  --type T       the program type; default: from the ELF section (xdp, socket, tc), else raw\n"
    "  --mem-size N   raw: the input memory's size in bytes (default: unknown, r2 bounds it)\n"
    "  -v             print the abstract state before each instruction\n"
    "  --json         print the result as one JSON object\n"
    "exit codes: 0 accepted, 1 rejected, 2 internal error, 64 usage\n";

}  // namespace

int cmd_verify(const std::vector<std::string>& argv) {
  OptionSpec spec;
  add_verify_options(spec);
  add_selection_options(spec);
  spec.flags = {"-v", "--json", "--help", "-h"};
  auto args = Args::parse(argv, spec);
  if (!args) {
    fmt::print(stderr, "bpfvm verify: {}\n\n{}", args.error().message, verify_usage);
    return exit_usage;
  }
  if (args->flag("--help") || args->flag("-h")) {
    fmt::print("{}", verify_usage);
    return exit_ok;
  }
  if (args->positionals().size() != 1) {
    fmt::print(stderr, "bpfvm verify: expected one FILE\n\n{}", verify_usage);
    return exit_usage;
  }
  auto mem_size = args->number("--mem-size", 0, 1LL << 32);
  if (!mem_size) {
    fmt::print(stderr, "bpfvm verify: {}\n", mem_size.error().message);
    return exit_usage;
  }
  auto selection = program_selection(*args);
  if (!selection) {
    fmt::print(stderr, "bpfvm verify: {}\n\n{}", selection.error().message, verify_usage);
    return exit_usage;
  }
  const std::string& file = args->positionals()[0];
  isa::LoadOptions load;
  load.program = *selection;
  auto program = isa::load_file(file, load);
  if (!program) {
    fmt::print(stderr, "bpfvm verify: {}\n", program.error().to_string());
    return exit_rejected;
  }
  auto env = verify_environment(*args, *program);
  if (!env) {
    fmt::print(stderr, "bpfvm verify: {}\n", env.error().message);
    return exit_usage;
  }
  verifier::Options options;
  options.record_invariants = args->flag("-v");
  isa::Program copy = *program;
  auto t0 = std::chrono::steady_clock::now();
  auto result = verifier::verify(std::move(*program), *env, options);
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();

  if (args->flag("--json")) {
    std::string out = fmt::format(
        "{{\"file\":{},\"type\":{},\"accepted\":{},\"instructions\":{},\"visits\":{},\"ms\":{:.3f}",
        json_string(file), json_string(env->name), result.accepted(), copy.insns.size(), result.visits, ms);
    if (result.accepted()) {
      out += ",\"stack_depth\":[";
      const auto& depth = result.program->stack_depth();
      for (std::size_t i = 0; i < depth.size(); ++i) out += fmt::format("{}{}", i ? "," : "", depth[i]);
      out += fmt::format("],\"max_stack_total\":{}", result.program->max_stack_total());
    }
    if (result.diagnostic) {
      const auto& d = *result.diagnostic;
      out += fmt::format(
          ",\"error\":{{\"insn\":{},\"insn_text\":{},\"check\":{},\"message\":{},\"function\":{}", d.insn,
          json_string(d.insn_text), json_string(d.check), json_string(d.message), json_string(d.function));
      out += ",\"registers\":[";
      for (std::size_t i = 0; i < d.registers.size(); ++i)
        out += (i ? "," : "") + json_string(d.registers[i]);
      out += "]";
      if (d.line)
        out +=
            fmt::format(",\"line\":{{\"file\":{},\"line\":{},\"column\":{},\"source\":{}}}",
                        json_string(d.line->file), d.line->line, d.line->column, json_string(d.line->source));
      out += "}";
    }
    if (options.record_invariants) {
      out += ",\"invariants\":[";
      for (std::size_t i = 0; i < result.invariants.size(); ++i)
        out += (i ? "," : "") + json_string(result.invariants[i]);
      out += "]";
    }
    fmt::print("{}}}\n", out);
    return result.accepted() ? exit_ok : exit_rejected;
  }

  if (options.record_invariants) {
    for (std::size_t pc = 0; pc < result.invariants.size(); ++pc) {
      if (pc > 0 && isa::decode(copy.insns[pc - 1]) &&
          isa::info(*isa::decode(copy.insns[pc - 1])).kind == isa::Kind::lddw)
        continue;
      const auto& inv = result.invariants[pc];
      fmt::print("{:5}: {}\n       {}\n", pc, verifier::describe_insn(copy, pc),
                 inv.empty() ? "unreachable" : inv);
    }
  }
  if (result.accepted()) {
    fmt::print("{}: accepted as {} ({} instructions, {} visits, {:.1f} ms, stack {} bytes)\n", file,
               env->name, copy.insns.size(), result.visits, ms, result.program->max_stack_total());
    return exit_ok;
  }
  fmt::print("{}: rejected as {}\n{}\n", file, env->name, result.diagnostic->to_string());
  return exit_rejected;
}

}  // namespace bpfvm::cli
