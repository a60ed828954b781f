# hostile: writes to stderr forever
# verdict: runtime_error | time_limit
import os

block = b"e" * (1 << 20)
while True:
    os.write(2, block)
