#!/usr/bin/env bash
# The main job on a bundled example: installs what is missing, builds the CLI and the XDP
# examples, verifies examples/xdp/xdp_firewall.c's object as an XDP program, then runs it on the
# JIT (the interpreter where this machine has no JIT) over the bundled capture
# examples/xdp/traffic.pcap (300 packets of gen_pcap's synthetic traffic): prints the verdicts
# and the maps.
set -euo pipefail
cd "$(dirname "$0")/.."

tools/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release --target bpfvm_cli bpfvm_xdp_examples -j "$(nproc)" >/dev/null

build=build/release
bpfvm=$build/tools/bpfvm
object=$build/bpf/xdp_firewall.v4.o
capture=examples/xdp/traffic.pcap
engine=interp
help=$("$bpfvm" run --help)
grep -qE -- '--engine E .*[ ,]jit(,|$)' <<<"$help" && engine=jit

echo "\$ bpfvm verify $object --type xdp"
"$bpfvm" verify "$object" --type xdp
echo "\$ bpfvm run $object --type xdp --pcap $capture --engine $engine --verified --dump-maps"
"$bpfvm" run "$object" --type xdp --pcap "$capture" --engine "$engine" --verified --dump-maps
