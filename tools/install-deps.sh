#!/usr/bin/env bash
# Installs what building and testing bpfvm needs on Debian 12, skipping what is already there.
# Usage: tools/install-deps.sh [--cross]   (--cross adds the AArch64 cross toolchain and qemu)
set -euo pipefail

packages=(cmake ninja-build g++ python3 libfmt-dev catch2 clang-19 llvm-19 llvm-19-dev libbpf-dev
          linux-libc-dev libpcap-dev)
if [[ "${1:-}" == "--cross" ]]; then
  packages+=(g++-aarch64-linux-gnu qemu-user)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  sudo=""
  [[ $(id -u) -ne 0 ]] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi
