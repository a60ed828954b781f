# hostile: lists every process on the machine and reads the command lines of the harness and of other users' processes
# verdict: accepted
# needs: uid, processes_hidden  (skipped where the sandbox lacks them: the host's processes are visible there)
import json
import os
import sys

ctx = json.loads(sys.stdin.readline())
mine = os.getuid()
seen = []
for name in os.listdir("/proc"):
    if not name.isdigit():
        continue
    try:
        if os.stat(f"/proc/{name}").st_uid != mine:
            seen.append(name)
    except OSError:
        pass
try:
    with open(f"/proc/{ctx['harness_pid']}/cmdline", "rb") as f:
        seen.append("harness cmdline " + f.read(40).decode(errors="replace"))
except OSError:
    pass
print(f"ESCAPED sees {len(seen)}: {' '.join(seen[:5])}" if seen else "contained")
