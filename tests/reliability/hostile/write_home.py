# hostile: overwrites the harness user's home canary and creates files in the real home and the harness's cwd
# verdict: accepted
# needs: uid  (skipped where the sandbox lacks it: it would hit the host)
import json
import os
import sys

ctx = json.loads(sys.stdin.readline())
for path in (
    ctx["home_canary"],
    ctx["home_new"],
    ctx["cwd_new"],
    os.path.expanduser("~root/.codetune-pwned"),
):
    try:
        with open(path, "w") as f:
            f.write("pwned")
    except OSError:
        pass
with open(os.path.expanduser("~/inside-sandbox-home.txt"), "w") as f:  # $HOME is the sandbox folder: allowed
    f.write("fine")
print("contained")
