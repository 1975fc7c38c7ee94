// Context layouts against the kernel's structs (linux/bpf.h).
#include <catch2/catch.hpp>

#include <linux/bpf.h>
#include <cstddef>

#include "verifier/environment.hpp"

using namespace bpfvm::verifier;

namespace {
const CtxField& field(const Environment& env, std::string_view name) {
  for (const auto& f : env.fields)
    if (f.name == name) return f;
  FAIL("no field " << name);
  return env.fields.front();
}
}  // namespace

TEST_CASE("xdp_md layout", "[verifier][env]") {
  auto env = xdp_environment();
  CHECK(check_environment(env).ok());
  CHECK(env.ctx_size == sizeof(struct xdp_md));
  CHECK(field(env, "data").offset == offsetof(struct xdp_md, data));
  CHECK(field(env, "data").kind == FieldKind::packet);
  CHECK(field(env, "data_end").offset == offsetof(struct xdp_md, data_end));
  CHECK(field(env, "data_end").kind == FieldKind::packet_end);
  CHECK(field(env, "data_meta").offset == offsetof(struct xdp_md, data_meta));
  CHECK(field(env, "ingress_ifindex").offset == offsetof(struct xdp_md, ingress_ifindex));
  CHECK(field(env, "rx_queue_index").offset == offsetof(struct xdp_md, rx_queue_index));
  CHECK(field(env, "egress_ifindex").offset == offsetof(struct xdp_md, egress_ifindex));
  for (const auto& f : env.fields) CHECK_FALSE(f.writable);
}

TEST_CASE("__sk_buff layout", "[verifier][env]") {
  for (auto env : {socket_filter_environment(), sched_cls_environment()}) {
    INFO(env.name);
    CHECK(check_environment(env).ok());
    CHECK(env.ctx_size == sizeof(struct __sk_buff));
    CHECK(field(env, "len").offset == offsetof(struct __sk_buff, len));
    CHECK(field(env, "mark").offset == offsetof(struct __sk_buff, mark));
    CHECK(field(env, "priority").offset == offsetof(struct __sk_buff, priority));
    CHECK(field(env, "ifindex").offset == offsetof(struct __sk_buff, ifindex));
    CHECK(field(env, "cb[0]").offset == offsetof(struct __sk_buff, cb));
    CHECK(field(env, "cb[4]").offset == offsetof(struct __sk_buff, cb) + 16);
    CHECK(field(env, "cb[2]").writable);
    CHECK(field(env, "hash").offset == offsetof(struct __sk_buff, hash));
    CHECK(field(env, "napi_id").offset == offsetof(struct __sk_buff, napi_id));
    CHECK(field(env, "gso_segs").offset == offsetof(struct __sk_buff, gso_segs));
    CHECK(field(env, "gso_size").offset == offsetof(struct __sk_buff, gso_size));
  }
  auto tc = sched_cls_environment();
  CHECK(field(tc, "data").offset == offsetof(struct __sk_buff, data));
  CHECK(field(tc, "data_end").offset == offsetof(struct __sk_buff, data_end));
  CHECK(field(tc, "data_meta").offset == offsetof(struct __sk_buff, data_meta));
  CHECK(field(tc, "tc_classid").offset == offsetof(struct __sk_buff, tc_classid));
  CHECK(field(tc, "tstamp").offset == offsetof(struct __sk_buff, tstamp));
  CHECK(field(tc, "tstamp").size == 8);
  CHECK(field(tc, "wire_len").offset == offsetof(struct __sk_buff, wire_len));
  CHECK(field(tc, "hwtstamp").offset == offsetof(struct __sk_buff, hwtstamp));
  CHECK(field(tc, "mark").writable);
  auto sf = socket_filter_environment();
  CHECK_FALSE(field(sf, "mark").writable);
  CHECK(sf.field_at(offsetof(struct __sk_buff, data), 4) == nullptr);
}

TEST_CASE("environments by name and embedder checks", "[verifier][env]") {
  CHECK(environment_by_name("xdp").ok());
  CHECK(environment_by_name("raw", 16)->raw_memory_size == 16u);
  auto bad = environment_by_name("kprobe");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message.find("unknown program type") != std::string::npos);

  Environment mine;
  mine.name = "mine";
  mine.ctx_size = 16;
  mine.regions.push_back(Region{"buf", 64, true});
  mine.fields = {CtxField{"buf", 0, 8, FieldKind::region, false, 0},
                 CtxField{"n", 8, 4, FieldKind::scalar, true, 0}};
  CHECK(check_environment(mine).ok());
  mine.fields.push_back(CtxField{"overlap", 10, 4, FieldKind::scalar, false, 0});
  CHECK_FALSE(check_environment(mine).ok());
  mine.fields.pop_back();
  mine.fields.push_back(CtxField{"outside", 14, 4, FieldKind::scalar, false, 0});
  CHECK_FALSE(check_environment(mine).ok());
  mine.fields.pop_back();
  mine.fields[0].region = 3;
  CHECK_FALSE(check_environment(mine).ok());
}
