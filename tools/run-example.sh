#!/usr/bin/env bash
# The main job on a bundled example: installs what is missing, builds the CLI, verifies
# examples/sum_bytes/sum_bytes.s, then runs it on examples/sum_bytes/input.hex.
# (The engine is the interpreter until the JIT backends land; see the README.)
set -euo pipefail
cd "$(dirname "$0")/.."

tools/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release --target bpfvm_cli -j "$(nproc)" >/dev/null

bpfvm=build/release/tools/bpfvm
example=examples/sum_bytes
echo "\$ bpfvm verify $example/sum_bytes.s --type raw"
"$bpfvm" verify "$example/sum_bytes.s" --type raw
echo "\$ bpfvm run $example/sum_bytes.s --mem $example/input.hex --engine interp"
"$bpfvm" run "$example/sum_bytes.s" --mem "$example/input.hex" --engine interp
