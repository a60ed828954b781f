# hostile: writes 1 MiB blocks to stdout forever (the output cap must hold, the harness memory too)
# verdict: runtime_error | time_limit
import sys

block = b"x" * (1 << 20)
while True:
    sys.stdout.buffer.write(block)
