#!/usr/bin/env bash
# Runs every test: installs what is missing, then builds and tests the release, asan (ASan+UBSan)
# and aarch64 (cross-built, run under qemu-aarch64) presets. Exits non-zero on any failure.
# BPFVM_TEST_PRESETS="release asan" narrows the presets for a quicker local run.
set -euo pipefail
cd "$(dirname "$0")/.."

tools/install-deps.sh --cross

presets=${BPFVM_TEST_PRESETS:-"release asan aarch64"}
jobs=$(nproc)
for preset in $presets; do
  echo "=== preset $preset"
  start=$SECONDS
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$jobs"
  ctest --preset "$preset" -j "$jobs"
  echo "=== preset $preset passed in $((SECONDS - start)) s"
done
