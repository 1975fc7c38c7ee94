# Sums the bytes of the input memory (r1 = pointer, r2 = length), at most 64 of them.
# Every load is bounds-checked against the length, so the verifier can prove it safe
# for any input size.
  r0 = 0
  r3 = 0
loop:
  if r3 >= r2 goto done
  if r3 >= 64 goto done
  r4 = r1
  r4 += r3
  r5 = *(u8 *)(r4 + 0)
  r0 += r5
  r3 += 1
  goto loop
done:
  exit
