// clang -target bpf compiles little-endian BPF (bpfel) on the hosts bpfvm supports.
#pragma once
#include <linux/byteorder/little_endian.h>
