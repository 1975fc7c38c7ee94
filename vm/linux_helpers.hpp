// The Linux helpers bpfvm implements, under their kernel ids and prototypes (isa/helpers.hpp):
//   1 map_lookup_elem   2 map_update_elem   3 map_delete_elem   5 ktime_get_ns
//   6 trace_printk      7 get_prandom_u32   8 get_smp_processor_id   12 tail_call
//   26 skb_load_bytes   44 xdp_adjust_head  65 xdp_adjust_tail  130 ringbuf_output  131 ringbuf_reserve
//   132 ringbuf_submit  133 ringbuf_discard 134 ringbuf_query
// They find their state in the RunContext: maps (MapSet::attach), the packet
// (PacketContext::attach) and the trace_printk sink (RunContext::set_print). Every pointer a
// program passes must lie in the run's stack or regions, and every map argument must be a map
// of the attached MapSet; otherwise the run stops with a helper_error trap naming the helper.
// bpf_loop (181) is not offered: it calls back into the program, and a HelperFn cannot enter
// an engine (see docs/MAPS.md).
#pragma once

#include "isa/error.hpp"
#include "vm/helpers.hpp"

namespace bpfvm::vm {

Status add_linux_helpers(HelperRegistry& registry);

}  // namespace bpfvm::vm
