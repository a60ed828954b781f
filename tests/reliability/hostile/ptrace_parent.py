# hostile: tries to ptrace-attach to its parent and to the harness
# verdict: accepted
# needs: uid  (skipped where the sandbox lacks it: it would hit the host)
import ctypes
import json
import os
import sys

ctx = json.loads(sys.stdin.readline())
libc = ctypes.CDLL(None, use_errno=True)
out = "contained"
for pid in (os.getppid(), ctx["harness_pid"]):
    if libc.ptrace(16, pid, None, None) == 0:  # PTRACE_ATTACH
        out = "ESCAPED attached"
print(out)
