# hostile: allocates 20 GiB at once
# verdict: memory_limit
x = bytearray(20 * 2**30)
print(len(x))
