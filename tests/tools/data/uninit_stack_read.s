# Reads a stack slot it never wrote: safe when run (the stack is zeroed), rejected by the
# verifier (an uninitialised read). Used by the bpfvm bench tests.
r0 = *(u64 *)(r10 - 8)
exit
