// bpfvm run FILE: runs a program on some memory, a packet or a capture, and prints r0 (and the
// verdict's name), or the trap that stopped it; optionally the maps afterwards.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "api/bpfvm.hpp"
#include "conformance/data_file.hpp"
#include "conformance/engines.hpp"
#include "isa/disasm.hpp"
#include "isa/load.hpp"
#include "tools/args.hpp"
#include "tools/commands.hpp"
#include "tools/memory_options.hpp"
#include "tools/pcap.hpp"
#include "tools/selection.hpp"

namespace bpfvm::cli {
namespace {

constexpr const char* run_usage =
    "usage: bpfvm run FILE [--section S | --program P] [--mem HEXFILE | --mem-hex '..'] [--engine E] "
    "[--budget N] [--trace]\n"
    "       bpfvm run FILE --type T [--packet HEX | --pcap FILE] [--repeat N] [--dump-maps] "
    "[--verified [--no-budget]] ...\n"
    "\n"
    "Runs the program in FILE with r1 = the memory's address and r2 = its size, and prints r0.\n"
    "FILE is an ELF object, raw instructions, assembly text, or a conformance .data file (its\n"
    "program and its memory).\n"
    "  --section S    the program to run when FILE holds several: a section name (xdp, ...)\n"
    "  --program P    ... or a function name (`bpfvm list FILE` shows both)\n"
    "  --mem FILE     the memory: a file of hex bytes (\"00 01 ff\"), read and written by the program\n"
    "  --mem-hex HEX  the memory as hex bytes on the command line\n"
    "  --engine E     the engine: {}\n"
    "  --budget N     stop with a trap after N instructions (default {})\n"
    "  --trace        print every step: pc, instruction, the registers it changed\n"
    "With maps and the Linux helpers (map_lookup_elem, trace_printk, ring buffers, ...):\n"
    "  --type T       raw (r1/r2 = the memory), xdp, socket_filter or sched_cls (r1 = a context\n"
    "                 over a packet: struct xdp_md or struct __sk_buff)\n"
    "  --packet HEX   one packet (Ethernet frame) as hex bytes; prints r0 and the verdict\n"
    "  --pcap FILE    runs over every packet of a pcap capture; prints the verdicts' counts and\n"
    "                 the time per packet\n"
    "  --repeat N     runs N times (raw, or one packet) and prints the time per run\n"
    "  --dump-maps    prints every map after the runs\n"
    "  --verified     verifies the program for T first (raw: for exactly this memory) and runs it\n"
    "                 with the accesses the verifier proved unchecked; refuses a rejected program\n"
    "  --no-budget    with --verified: counts no instructions (the verifier proved that every loop\n"
    "                 ends), so there is no budget; the fastest form\n"
    "trace_printk lines go to stderr.\n"
    "exit codes: 0 ran to exit, 1 rejected input or a trap, 2 internal error, 64 usage\n";

std::string usage_text() {
  std::string engines;
  for (auto e : conformance::engine_names()) engines += (engines.empty() ? "" : ", ") + std::string(e);
  return fmt::format(fmt::runtime(run_usage), engines, conformance::default_budget);
}

std::string changes(const std::array<std::uint64_t, 11>& before, const std::array<std::uint64_t, 11>& after) {
  std::string out;
  for (std::size_t r = 0; r < before.size(); ++r)
    if (before[r] != after[r]) out += fmt::format("{}r{} = {:#x}", out.empty() ? "" : ", ", r, after[r]);
  return out;
}

std::optional<Engine> engine_named(std::string_view name) {
  if (name != "jit") return engine_from_string(name);
#if defined(__x86_64__)
  return Engine::jit_x64;
#elif defined(__aarch64__)
  return Engine::jit_a64;
#else
  return std::nullopt;
#endif
}

void print_trap(const vm::Trap& t) {
  fmt::print("trap: {}\n", t.message());
  fmt::print("  kind: {}\n  pc: {}\n", vm::to_string(t.kind), t.pc);
  if (t.address) fmt::print("  address: {:#x}\n  size: {}\n", t.address, t.size);
  if (!t.region.empty()) fmt::print("  region: {}\n", t.region);
}

std::string hex_of(std::span<const std::uint8_t> bytes) {
  std::string s;
  for (std::size_t i = 0; i < bytes.size(); ++i) s += fmt::format("{}{:02x}", i ? " " : "", bytes[i]);
  return s;
}

struct TypedRun {
  std::string type;
  std::string engine;
  std::uint64_t budget = 0;
  std::optional<std::vector<std::uint8_t>> packet;
  std::optional<std::string> pcap;
  std::uint64_t repeat = 1;
  bool dump_maps = false;
  bool verified = false;
  bool no_budget = false;
};

// --type: the program runs with the Linux helpers and its maps, on memory or on packets.
int run_typed(isa::Program program, std::vector<std::uint8_t> memory, const TypedRun& opts) {
  auto rejected = [](const Error& e) {
    fmt::print(stderr, "bpfvm run: {}\n", e.to_string());
    return exit_rejected;
  };
  Vm vm;
  if (Status s = vm.add_linux_helpers(); !s) return rejected(s.error());
  vm.set_print([](std::string_view line) { fmt::print(stderr, "trace_printk: {}\n", line); });
  if (Status s = vm.load(std::move(program)); !s) return rejected(s.error());
  const std::optional<Engine> engine = engine_named(opts.engine);
  if (!engine) return rejected(Error{"unknown engine '" + opts.engine + "'"});
  Result<std::shared_ptr<const vm::Executable>> exe = Error("not compiled");
  if (opts.verified) {
    // raw: verified for exactly this memory; the program types: for their contexts.
    auto env = verifier::environment_by_name(opts.type, memory.size());
    if (!env) return rejected(env.error());
    auto verdict = vm.verify(*env);
    if (!verdict.accepted()) {
      fmt::print(stderr, "bpfvm run: not verified, so not run unchecked:\n{}\n",
                 verdict.diagnostic->to_string());
      return exit_rejected;
    }
    vm::CompileOptions options;
    options.enforce_budget = !opts.no_budget;
    exe = vm.compile(*engine, *verdict.program, options);
  } else {
    exe = vm.compile(*engine);
  }
  if (!exe) return rejected(exe.error());

  vm::RunContext ctx;
  ctx.set_budget(opts.budget);
  const std::optional<vm::ContextKind> kind = vm::context_kind(opts.type);
  std::unique_ptr<vm::PacketContext> packet;
  if (kind) {
    auto created = vm::PacketContext::create(*kind);
    if (!created) return rejected(created.error());
    packet = std::move(created).value();
  }
  auto dump = [&] {
    if (!opts.dump_maps) return;
    for (const auto& map : vm.maps()->all()) fmt::print("{}", vm::describe_map(*map));
  };
  auto verdict = [&](std::uint64_t r0) {
    return kind ? fmt::format("r0 = {} ({})", r0, vm::verdict_name(*kind, r0))
                : fmt::format("r0 = {:#x} ({})", r0, r0);
  };
  using Clock = std::chrono::steady_clock;

  if (opts.pcap) {
    auto capture = read_pcap(*opts.pcap);
    if (!capture) return rejected(capture.error());
    std::map<std::uint64_t, std::uint64_t> verdicts;
    std::uint64_t traps = 0;
    std::optional<vm::Trap> first_trap;
    std::uint64_t first_trap_packet = 0;
    const auto start = Clock::now();
    for (std::size_t i = 0; i < capture->packets.size(); ++i) {
      if (Status s = packet->set_packet(capture->packets[i]); !s) {
        Error e = s.error();
        e.file = *opts.pcap;
        e.message = fmt::format("packet {}: {}", i, e.message);
        return rejected(e);
      }
      packet->attach(ctx);
      vm::RunResult r = (*exe)->run(ctx);
      if (r.trap) {
        if (!first_trap) first_trap = r.trap, first_trap_packet = i;
        ++traps;
      } else {
        ++verdicts[r.r0];
      }
    }
    const double ns = std::chrono::duration<double, std::nano>(Clock::now() - start).count();
    fmt::print("packets: {}\n", capture->packets.size());
    for (auto [r0, n] : verdicts) fmt::print("  {}: {}\n", verdict(r0), n);
    if (traps != 0) {
      fmt::print("  traps: {} (the first at packet {})\n", traps, first_trap_packet);
      print_trap(*first_trap);
    }
    if (!capture->packets.empty())
      fmt::print("time: {:.1f} ns per packet on {} (including copying each packet in)\n",
                 ns / static_cast<double>(capture->packets.size()), to_string(*engine));
    dump();
    return traps == 0 ? exit_ok : exit_rejected;
  }

  vm::RunResult result;
  const auto start = Clock::now();
  for (std::uint64_t i = 0; i < opts.repeat; ++i) {
    if (packet) {
      if (Status s = packet->set_packet(*opts.packet); !s) return rejected(s.error());
      packet->attach(ctx);
    } else {
      ctx.clear_regions();
      const auto address = memory.empty() ? std::uint64_t{0} : reinterpret_cast<std::uint64_t>(memory.data());
      if (!memory.empty()) ctx.add_region({address, memory.size(), vm::Access::read_write, "input"});
      ctx.set_args({address, memory.size(), 0, 0, 0});
      ctx.set_maps(nullptr);
    }
    result = (*exe)->run(ctx);
    if (result.trap) break;
  }
  const double ns = std::chrono::duration<double, std::nano>(Clock::now() - start).count();
  if (result.trap) {
    print_trap(*result.trap);
    dump();
    return exit_rejected;
  }
  fmt::print("{}\n", verdict(result.r0));
  if (packet && (opts.packet->size() != packet->packet().size() ||
                 !std::equal(opts.packet->begin(), opts.packet->end(), packet->packet().begin())))
    fmt::print("packet out: {}\n", hex_of(packet->packet()));
  if (opts.repeat > 1)
    fmt::print("time: {:.1f} ns per run on {} over {} runs\n", ns / static_cast<double>(opts.repeat),
               to_string(*engine), opts.repeat);
  dump();
  return exit_ok;
}

}  // namespace

int cmd_run(const std::vector<std::string>& argv) {
  OptionSpec spec;
  spec.with_value = {"--mem",  "--mem-hex", "--engine", "--budget",
                     "--type", "--packet",  "--pcap",   "--repeat"};
  add_selection_options(spec);
  spec.flags = {"--trace", "--help", "-h", "--dump-maps", "--verified", "--no-budget"};
  auto args = Args::parse(argv, spec);
  auto usage_error = [](const std::string& message) {
    fmt::print(stderr, "bpfvm run: {}\n\n{}", message, usage_text());
    return exit_usage;
  };
  if (!args) return usage_error(args.error().message);
  if (args->flag("--help") || args->flag("-h")) {
    fmt::print("{}", usage_text());
    return exit_ok;
  }
  if (args->positionals().size() != 1) return usage_error("expected one FILE");
  auto selection = program_selection(*args);
  if (!selection) return usage_error(selection.error().message);
  if (args->value("--mem") && args->value("--mem-hex"))
    return usage_error("--mem and --mem-hex exclude each other");
  auto budget = args->number("--budget", 1, 1LL << 62);
  if (!budget) return usage_error(budget.error().message);
  conformance::RunSettings settings;
  settings.engine = args->value("--engine").value_or("interp");
  bool known = false;
  for (auto e : conformance::engine_names()) known |= e == settings.engine;
  if (!known) return usage_error("unknown engine '" + settings.engine + "'");
  if (*budget) settings.budget = static_cast<std::uint64_t>(**budget);
  auto repeat = args->number("--repeat", 1, 1LL << 40);
  if (!repeat) return usage_error(repeat.error().message);
  const std::optional<std::string> type = args->value("--type");
  if (type && *type != "raw" && !vm::context_kind(*type))
    return usage_error("unknown program type '" + *type + "' (raw, xdp, socket_filter, sched_cls)");
  const bool packet_type = type && *type != "raw";
  if (!type && (args->value("--packet") || args->value("--pcap") || args->flag("--dump-maps") || *repeat ||
                args->flag("--verified")))
    return usage_error("--packet, --pcap, --repeat, --dump-maps and --verified need --type");
  if (packet_type && !args->value("--packet") && !args->value("--pcap"))
    return usage_error("--type " + *type + " needs --packet HEX or --pcap FILE");
  if (args->value("--packet") && args->value("--pcap"))
    return usage_error("--packet and --pcap exclude each other");
  if (args->value("--pcap") && *repeat) return usage_error("--repeat runs one packet; --pcap runs many");
  if (type && args->flag("--trace")) return usage_error("--trace runs without --type");
  if (args->flag("--no-budget") && !args->flag("--verified"))
    return usage_error("--no-budget needs --verified: only a verified program may run without a budget");
  if (args->flag("--no-budget") && args->value("--budget"))
    return usage_error("--budget and --no-budget exclude each other");

  const std::string& file = args->positionals()[0];
  auto rejected = [](const Error& e) {
    fmt::print(stderr, "bpfvm run: {}\n", e.to_string());
    return exit_rejected;
  };
  isa::Program program;
  std::vector<std::uint8_t> memory;
  if (file.size() > 5 && file.ends_with(".data")) {
    auto data = conformance::read_data_file(file);
    if (!data) return rejected(data.error());
    if (!data->skip.empty()) return rejected(Error{file + ": " + data->skip});
    program.name = data->name;
    program.insns = std::move(data->insns);
    memory = std::move(data->memory);
  } else {
    isa::LoadOptions load;
    load.program = *selection;
    auto loaded = isa::load_file(file, load);
    if (!loaded) return rejected(loaded.error());
    program = std::move(*loaded);
  }
  auto given = memory_option(*args);
  if (!given) return rejected(given.error());
  if (*given) memory = std::move(**given);

  if (type) {
    TypedRun typed;
    typed.type = *type;
    typed.engine = settings.engine;
    typed.budget = settings.budget;
    typed.repeat = *repeat ? static_cast<std::uint64_t>(**repeat) : 1;
    typed.dump_maps = args->flag("--dump-maps");
    typed.verified = args->flag("--verified");
    typed.no_budget = args->flag("--no-budget");
    typed.pcap = args->value("--pcap");
    if (auto hex = args->value("--packet")) {
      auto bytes = conformance::hex_decode(*hex);
      if (!bytes) return rejected(Error{"--packet: " + bytes.error().message});
      typed.packet = std::move(*bytes);
    }
    if (packet_type && (args->value("--mem") || args->value("--mem-hex")))
      return usage_error("--mem gives raw memory; a packet type takes --packet or --pcap");
    return run_typed(std::move(program), std::move(memory), typed);
  }

  // A step is printed when the next one starts (or the run ends): only then are its effects known.
  std::optional<std::pair<std::size_t, std::array<std::uint64_t, 11>>> pending;
  auto print_step = [&](const std::array<std::uint64_t, 11>& after) {
    if (!pending) return;
    auto [pc, before] = *pending;
    fmt::print("{:5}: {:<40} {}\n", pc, isa::format_insn(program.insns, pc, isa::Syntax::llvm),
               changes(before, after));
  };
  if (args->flag("--trace")) {
    settings.trace = [&](std::size_t pc, const std::array<std::uint64_t, 11>& regs) {
      print_step(regs);
      pending.emplace(pc, regs);
    };
  }
  auto outcome = conformance::run_program(program, memory, settings);
  if (!outcome.error.empty()) {
    fmt::print(stderr, "bpfvm run: {}\n", outcome.error);
    return exit_rejected;
  }
  print_step(outcome.regs);
  if (outcome.trap) {
    const auto& t = *outcome.trap;
    fmt::print("trap: {}\n", t.message);
    fmt::print("  kind: {}\n  pc: {}\n", t.kind, t.pc);
    if (t.address) fmt::print("  address: {:#x}\n  size: {}\n", *t.address, t.size);
    if (!t.region.empty()) fmt::print("  region: {}\n", t.region);
    return exit_rejected;
  }
  fmt::print("r0 = {:#x} ({})\n", outcome.r0, outcome.r0);
  return exit_ok;
}

}  // namespace bpfvm::cli
