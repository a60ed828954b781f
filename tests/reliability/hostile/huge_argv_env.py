# hostile: execs with a 30 MB argument list and a 10 MB environment variable
# verdict: accepted | runtime_error
import os

try:
    os.execve("/bin/echo", ["echo"] + ["x" * 100_000] * 300, {"BIG": "y" * (10 << 20)})
except OSError:
    print("contained")
