# Reads 8 bytes at offset 8 of its input: a trap on an input shorter than 16 bytes.
r0 = *(u64 *)(r1 + 8)
exit
