// Helper prototypes: ids against the kernel's enum bpf_func_id, the table's own consistency, and
// embedder registration.
#include <catch2/catch.hpp>

#include <linux/bpf.h>

#include "isa/helpers.hpp"

using namespace bpfvm::isa;

TEST_CASE("built-in helper ids match linux/bpf.h", "[verifier][helpers]") {
  auto set = HelperSet::linux_builtin();
  struct Expect {
    const char* name;
    int id;
  };
  const Expect expect[] = {
      {"map_lookup_elem", BPF_FUNC_map_lookup_elem},
      {"map_update_elem", BPF_FUNC_map_update_elem},
      {"map_delete_elem", BPF_FUNC_map_delete_elem},
      {"probe_read", BPF_FUNC_probe_read},
      {"ktime_get_ns", BPF_FUNC_ktime_get_ns},
      {"trace_printk", BPF_FUNC_trace_printk},
      {"get_prandom_u32", BPF_FUNC_get_prandom_u32},
      {"get_smp_processor_id", BPF_FUNC_get_smp_processor_id},
      {"skb_store_bytes", BPF_FUNC_skb_store_bytes},
      {"tail_call", BPF_FUNC_tail_call},
      {"redirect", BPF_FUNC_redirect},
      {"perf_event_output", BPF_FUNC_perf_event_output},
      {"skb_load_bytes", BPF_FUNC_skb_load_bytes},
      {"csum_diff", BPF_FUNC_csum_diff},
      {"xdp_adjust_head", BPF_FUNC_xdp_adjust_head},
      {"redirect_map", BPF_FUNC_redirect_map},
      {"xdp_adjust_meta", BPF_FUNC_xdp_adjust_meta},
      {"xdp_adjust_tail", BPF_FUNC_xdp_adjust_tail},
      {"probe_read_kernel", BPF_FUNC_probe_read_kernel},
      {"ringbuf_output", BPF_FUNC_ringbuf_output},
      {"ringbuf_reserve", BPF_FUNC_ringbuf_reserve},
      {"ringbuf_submit", BPF_FUNC_ringbuf_submit},
      {"ringbuf_discard", BPF_FUNC_ringbuf_discard},
      {"ringbuf_query", BPF_FUNC_ringbuf_query},
      {"loop", BPF_FUNC_loop},
      {"strncmp", BPF_FUNC_strncmp},
      {"xdp_get_buff_len", BPF_FUNC_xdp_get_buff_len},
      {"ktime_get_tai_ns", BPF_FUNC_ktime_get_tai_ns},
  };
  for (const auto& e : expect) {
    INFO(e.name);
    const auto* h = set.find(std::string_view(e.name));
    REQUIRE(h != nullptr);
    CHECK(h->id == static_cast<std::uint32_t>(e.id));
    CHECK(set.find(static_cast<std::uint32_t>(e.id)) == h);
  }
}

TEST_CASE("every built-in prototype is well formed", "[verifier][helpers]") {
  HelperSet fresh;
  for (const auto& h : linux_helpers()) {
    INFO(h.name);
    CHECK(fresh.add(h).ok());
  }
  CHECK(fresh.all().size() == linux_helpers().size());
  for (std::size_t i = 1; i < linux_helpers().size(); ++i)
    CHECK(linux_helpers()[i - 1].id < linux_helpers()[i].id);
}

TEST_CASE("prototypes describe the kernel's argument kinds", "[verifier][helpers]") {
  auto set = HelperSet::linux_builtin();
  const auto* lookup = set.find(1u);
  REQUIRE(lookup);
  CHECK(lookup->ret == ReturnKind::map_value_or_null);
  CHECK(lookup->args[0] == ArgKind::const_map_ptr);
  CHECK(lookup->args[1] == ArgKind::map_key);
  CHECK(lookup->arg_count() == 2);
  const auto* reserve = set.find("ringbuf_reserve");
  REQUIRE(reserve);
  CHECK(reserve->ret == ReturnKind::alloc_mem_or_null);
  CHECK(set.find("xdp_adjust_head")->changes_packet);
  CHECK_FALSE(set.find("map_lookup_elem")->changes_packet);
  CHECK(set.find("loop")->calls_callback);
  CHECK(set.find("ktime_get_ns")->arg_count() == 0);
}

TEST_CASE("embedders add and replace helpers", "[verifier][helpers]") {
  HelperSet set;
  HelperPrototype mine;
  mine.id = 1000;
  mine.name = "my_hash";
  mine.args = {ArgKind::mem, ArgKind::const_size};
  REQUIRE(set.add(mine).ok());
  REQUIRE(set.find("my_hash"));
  CHECK(set.find(1000u)->args[1] == ArgKind::const_size);

  HelperPrototype clash = mine;
  clash.id = 1001;
  CHECK_FALSE(set.add(clash).ok());  // name taken by another id

  HelperPrototype no_size;
  no_size.id = 1002;
  no_size.name = "bad_mem";
  no_size.args = {ArgKind::mem, ArgKind::anything};
  auto st = set.add(no_size);
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().message.find("no size argument") != std::string::npos);

  HelperPrototype key_without_map;
  key_without_map.id = 1003;
  key_without_map.name = "bad_key";
  key_without_map.args = {ArgKind::map_key};
  CHECK_FALSE(set.add(key_without_map).ok());

  mine.ret = ReturnKind::none;
  REQUIRE(set.add(mine).ok());  // same id: replaced
  CHECK(set.find(1000u)->ret == ReturnKind::none);
  CHECK(set.all().size() == 1);
}
