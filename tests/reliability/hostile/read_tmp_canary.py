# hostile: reads the canary the harness left in the real /tmp
# verdict: accepted
# needs: fs_protected  (skipped where the sandbox lacks it: it would hit the host)
import json
import sys

ctx = json.loads(sys.stdin.readline())
try:
    with open(ctx["tmp_canary"]) as f:
        print("ESCAPED " + f.read()[:20])
except OSError:
    print("contained")
