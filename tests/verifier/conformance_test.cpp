// Every program of the conformance suite, verified under `raw` with its exact memory size. All of
// them are safe (they run to completion on every engine), so all must be accepted.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "isa/load.hpp"
#include "verifier/verifier.hpp"

using namespace bpfvm;

TEST_CASE("conformance programs verify under raw", "[verifier][conformance]") {
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(BPFVM_CONFORMANCE_DIR))
    if (e.path().extension() == ".data") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  REQUIRE(files.size() == 313);
  std::size_t accepted = 0;
  for (const auto& f : files) {
    INFO(f.filename().string());
    // The suite's format (bpf_conformance/README.md): sections by header, '#' comments.
    std::ifstream in(f);
    std::string line, section, asm_text;
    std::vector<std::uint8_t> mem, raw;
    while (std::getline(in, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      auto code = line.substr(0, line.find('#'));
      if (code.find("--") != std::string::npos) {
        section.clear();
        for (const char* s : {"asm", "result", "mem", "raw", "no register offset", " c", "error"})
          if (code.find(s) != std::string::npos) {
            section = s;
            break;
          }
        continue;
      }
      std::istringstream words(code);
      std::string w;
      if (section == "asm") asm_text += code + "\n";
      if (section == "mem")
        while (words >> w) mem.push_back(static_cast<std::uint8_t>(std::stoul(w, nullptr, 16)));
      if (section == "raw")
        while (words >> w) {
          auto v = std::stoull(w, nullptr, 0);
          for (int i = 0; i < 8; ++i) raw.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
        }
    }
    Result<isa::Program> p = raw.empty() ? [&] {
      isa::LoadOptions lo;
      lo.format = isa::InputFormat::text_conformance;
      std::vector<std::uint8_t> bytes(asm_text.begin(), asm_text.end());
      return isa::load_bytes(bytes, f.filename().string(), lo);
    }()
                                         : isa::program_from_bytes(raw);
    REQUIRE(p.ok());
    auto r = verifier::verify(std::move(*p), verifier::raw_environment(mem.size()));
    if (r.accepted())
      ++accepted;
    else
      FAIL_CHECK(r.diagnostic->to_string());
  }
  CHECK(accepted == files.size());
}
