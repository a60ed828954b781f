# hostile: maps 64 GiB of anonymous memory and touches it
# verdict: runtime_error | memory_limit
import mmap

m = mmap.mmap(-1, 64 * 2**30)
for i in range(0, len(m), 4096):
    m[i] = 1
