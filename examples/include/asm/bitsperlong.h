// clang -target bpf: eBPF is 64-bit.
#pragma once
#define __BITS_PER_LONG 64
#include <asm-generic/bitsperlong.h>
