# hostile: links its folder to the harness's canaries and writes through the links
# verdict: accepted
# needs: fs_protected  (skipped where the sandbox lacks it: it would hit the host)
import json
import os
import sys

ctx = json.loads(sys.stdin.readline())
for i, target in enumerate((ctx["home_canary"], ctx["tmp_canary"])):
    for make in (os.symlink, os.link):
        name = f"l{i}{make.__name__}"
        try:
            make(target, name)
            with open(name, "w") as f:
                f.write("pwned")
        except OSError:
            pass
print("contained")
