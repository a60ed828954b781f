# hostile: reads /etc/shadow, the harness's environment and memory, and a 0600 file in the harness's home
# verdict: accepted
# needs: uid  (skipped where the sandbox lacks it: it would hit the host)
import contextlib
import json
import os
import sys

ctx = json.loads(sys.stdin.readline())
pid = ctx["harness_pid"]
leaks = []
for path in (
    "/etc/shadow",
    f"/proc/{pid}/environ",
    f"/proc/{pid}/mem",
    f"/proc/{pid}/root/etc/shadow",
    ctx["secret_file"],
):
    try:
        with open(path, "rb") as f:
            if f.read(64):
                leaks.append(path)
    except OSError:
        pass
with contextlib.suppress(OSError):
    leaks.append(os.readlink(f"/proc/{pid}/cwd"))
print("ESCAPED " + " ".join(leaks) if leaks else "contained")
