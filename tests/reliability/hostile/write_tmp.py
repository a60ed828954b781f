# hostile: overwrites a world-writable canary in /tmp, creates a new file in /tmp and fills /var/tmp and /dev/shm
# verdict: accepted
# needs: fs_protected  (skipped where the sandbox lacks it: it would hit the host)
import contextlib
import json
import os
import sys

ctx = json.loads(sys.stdin.readline())
for path in (ctx["tmp_canary"], ctx["tmp_new"], "/var/tmp/codetune-pwned", "/dev/shm/codetune-pwned"):
    try:
        with open(path, "w") as f:
            f.write("pwned")
    except OSError:
        pass
with contextlib.suppress(OSError):
    os.unlink(ctx["tmp_canary"])
print("contained")
