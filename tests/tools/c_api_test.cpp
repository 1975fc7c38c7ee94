// The C API's error paths and its thread-safety promise (api/bpfvm.h).
#include <catch2/catch.hpp>

#include <cstring>
#include <thread>
#include <vector>

#include "api/bpfvm.h"

namespace {

// RFC 9669 encodings. r0 = *(u32 *)(r1 + 0); exit
const std::uint8_t ldxw_exit[] = {0x61, 0x10, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0};
// r1 = r0 = *(u32 *)(r1 + 0); call 7; exit
const std::uint8_t call7[] = {0x61, 0x11, 0, 0, 0,    0, 0, 0, 0x85, 0, 0, 0,
                              7,    0,    0, 0, 0x95, 0, 0, 0, 0,    0, 0, 0};

std::uint64_t plus_one(void* user, std::uint64_t r1, std::uint64_t, std::uint64_t, std::uint64_t,
                       std::uint64_t) {
  return r1 + *static_cast<const std::uint64_t*>(user);
}

}  // namespace

TEST_CASE("C API: order and argument errors are statuses with messages") {
  bpfvm_program* p = bpfvm_create();
  REQUIRE(p);
  bpfvm_result r;
  std::uint32_t word = 5;
  CHECK(bpfvm_run(p, &word, sizeof word, &r) == BPFVM_ERR_STATE);
  CHECK(bpfvm_compile(p) == BPFVM_ERR_STATE);
  CHECK(std::strcmp(bpfvm_last_error(p), "no program loaded") == 0);
  const std::uint8_t odd[] = {1, 2, 3};
  CHECK(bpfvm_load_bytes(p, odd, sizeof odd, nullptr) == BPFVM_ERR_LOAD);
  CHECK(std::strlen(bpfvm_last_error(p)) > 0);
  CHECK(bpfvm_load_file(p, "/nonexistent/prog.o", nullptr) == BPFVM_ERR_LOAD);
  CHECK(std::string(bpfvm_last_error(p)).find("/nonexistent/prog.o") != std::string::npos);
  CHECK(bpfvm_register_helper(p, 1, nullptr, plus_one, nullptr) == BPFVM_ERR_ARGUMENT);
  CHECK(bpfvm_load_bytes(nullptr, ldxw_exit, sizeof ldxw_exit, nullptr) == BPFVM_ERR_ARGUMENT);
  CHECK(bpfvm_run(nullptr, nullptr, 0, &r) == BPFVM_ERR_ARGUMENT);
  REQUIRE(bpfvm_load_bytes(p, ldxw_exit, sizeof ldxw_exit, nullptr) == BPFVM_OK);
  REQUIRE(bpfvm_compile(p) == BPFVM_OK);
  CHECK(bpfvm_run(p, nullptr, 4, &r) == BPFVM_ERR_ARGUMENT);
  CHECK(bpfvm_run(p, &word, sizeof word, &r) == BPFVM_OK);
  CHECK(r.r0 == 5);
  CHECK(r.trapped == 0);
  // No memory: r1 = 0, the load traps at pc 0.
  CHECK(bpfvm_run(p, nullptr, 0, &r) == BPFVM_ERR_TRAP);
  CHECK(r.trapped == 1);
  CHECK(r.trap.pc == 0);
  CHECK(r.trap.size == 4);
  CHECK(std::strlen(r.trap.message) > 0);
  CHECK(std::strcmp(bpfvm_status_string(BPFVM_ERR_TRAP), "trap") == 0);
  bpfvm_destroy(p);
  bpfvm_destroy(nullptr);
}

TEST_CASE("C API: helpers keep their own user pointers; at most 64 per program") {
  bpfvm_program* p = bpfvm_create();
  std::uint64_t one = 1, hundred = 100;
  REQUIRE(bpfvm_load_bytes(p, call7, sizeof call7, nullptr) == BPFVM_OK);
  REQUIRE(bpfvm_register_helper(p, 6, "add_one", plus_one, &one) == BPFVM_OK);
  REQUIRE(bpfvm_register_helper(p, 7, "add_hundred", plus_one, &hundred) == BPFVM_OK);
  REQUIRE(bpfvm_compile(p) == BPFVM_OK);
  std::uint32_t word = 5;
  bpfvm_result r;
  REQUIRE(bpfvm_run(p, &word, sizeof word, &r) == BPFVM_OK);
  CHECK(r.r0 == 105);
  // Replacing helper 7 reuses its slot.
  REQUIRE(bpfvm_register_helper(p, 7, "add_hundred", plus_one, &one) == BPFVM_OK);
  CHECK(bpfvm_run(p, &word, sizeof word, &r) == BPFVM_ERR_STATE);  // changed: compile again
  REQUIRE(bpfvm_compile(p) == BPFVM_OK);
  REQUIRE(bpfvm_run(p, &word, sizeof word, &r) == BPFVM_OK);
  CHECK(r.r0 == 6);
  for (std::uint32_t id = 100; id < 162; ++id)
    REQUIRE(bpfvm_register_helper(p, id, ("h" + std::to_string(id)).c_str(), plus_one, &one) == BPFVM_OK);
  CHECK(bpfvm_register_helper(p, 999, "one_too_many", plus_one, &one) == BPFVM_ERR_ARGUMENT);
  CHECK(std::string(bpfvm_last_error(p)).find("at most 64") != std::string::npos);
  bpfvm_destroy(p);
}

TEST_CASE("C API: one compiled handle runs on several threads at once") {
  bpfvm_program* p = bpfvm_create();
  std::uint64_t hundred = 100;
  REQUIRE(bpfvm_load_bytes(p, call7, sizeof call7, nullptr) == BPFVM_OK);
  REQUIRE(bpfvm_register_helper(p, 7, "add_hundred", plus_one, &hundred) == BPFVM_OK);
  REQUIRE(bpfvm_compile(p) == BPFVM_OK);
  std::vector<int> wrong(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (std::uint32_t i = 0; i < 2000; ++i) {
        std::uint32_t word = i * 4 + static_cast<std::uint32_t>(t);
        bpfvm_result r;
        if (bpfvm_run(p, &word, sizeof word, &r) != BPFVM_OK || r.r0 != word + 100u) ++wrong[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(wrong == std::vector<int>(4, 0));
  bpfvm_destroy(p);
}

TEST_CASE("C API: verify, then compile the verified form; a run of another size is refused") {
  bpfvm_program* p = bpfvm_create();
  REQUIRE(bpfvm_load_bytes(p, ldxw_exit, sizeof ldxw_exit, nullptr) == BPFVM_OK);
  // Two bytes of input cannot hold the 4-byte load.
  CHECK(bpfvm_verify(p, "raw", 2) == BPFVM_ERR_REJECTED);
  CHECK(std::string(bpfvm_last_error(p)).find("instruction 0") != std::string::npos);
  CHECK(bpfvm_verify(p, "nonsense", 4) == BPFVM_ERR_ARGUMENT);
  CHECK(bpfvm_verify(p, nullptr, 4) == BPFVM_ERR_ARGUMENT);
  REQUIRE(bpfvm_verify(p, "raw", 4) == BPFVM_OK);
  REQUIRE(bpfvm_compile(p) == BPFVM_OK);
  bpfvm_result r;
  std::uint32_t word = 9;
  CHECK(bpfvm_run(p, &word, sizeof word, &r) == BPFVM_OK);
  CHECK(r.r0 == 9);
  std::uint64_t wide = 9;
  CHECK(bpfvm_run(p, &wide, sizeof wide, &r) == BPFVM_ERR_TRAP);
  CHECK(std::string(r.trap.kind) == "entry mismatch");
  CHECK(std::string(r.trap.message).find("verified for 4 bytes") != std::string::npos);
  // A new program is unverified until verified again: checked, it traps on short input.
  REQUIRE(bpfvm_load_bytes(p, ldxw_exit, sizeof ldxw_exit, nullptr) == BPFVM_OK);
  REQUIRE(bpfvm_compile(p) == BPFVM_OK);
  std::uint16_t half = 1;
  CHECK(bpfvm_run(p, &half, sizeof half, &r) == BPFVM_ERR_TRAP);
  CHECK(std::string(r.trap.kind) == "out of bounds");
  CHECK(std::strcmp(bpfvm_status_string(BPFVM_ERR_REJECTED), "rejected by the verifier") == 0);
  // No budget: refused unverified; verified, it runs.
  REQUIRE(bpfvm_set_budget(p, BPFVM_NO_BUDGET) == BPFVM_OK);
  CHECK(bpfvm_compile(p) == BPFVM_ERR_COMPILE);
  CHECK(std::string(bpfvm_last_error(p)).find("without a budget") != std::string::npos);
  REQUIRE(bpfvm_verify(p, "raw", 4) == BPFVM_OK);
  REQUIRE(bpfvm_compile(p) == BPFVM_OK);
  CHECK(bpfvm_run(p, &word, sizeof word, &r) == BPFVM_OK);
  CHECK(r.r0 == 9);
  bpfvm_destroy(p);
}
