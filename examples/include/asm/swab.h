// clang -target bpf: the generic kernel UAPI definitions (Debian keeps asm/ per host architecture).
#pragma once
#include <asm-generic/swab.h>
