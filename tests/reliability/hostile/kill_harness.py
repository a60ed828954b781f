# hostile: sends SIGSTOP, SIGTERM and SIGKILL to the test process that runs the harness
# verdict: accepted
# needs: uid  (skipped where the sandbox lacks it: it would hit the host)
import json
import os
import signal
import sys

ctx = json.loads(sys.stdin.readline())
out = "contained"
for sig in (signal.SIGSTOP, signal.SIGTERM, signal.SIGKILL):
    try:
        os.kill(ctx["harness_pid"], sig)
        out = "ESCAPED signalled harness"
    except OSError:
        pass
print(out)
