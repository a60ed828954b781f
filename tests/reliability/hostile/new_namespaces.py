# hostile: creates a user and mount namespace (becoming root inside) unmounts the private /tmp and writes the canaries from there
# verdict: accepted
# needs: fs_protected  (skipped where the sandbox lacks it: it would hit the host)
import ctypes
import json
import sys

ctx = json.loads(sys.stdin.readline())
libc = ctypes.CDLL(None, use_errno=True)
libc.unshare(0x10000000 | 0x20000)  # CLONE_NEWUSER | CLONE_NEWNS
for d in (b"/tmp", b"/root", b"/"):
    libc.umount2(d, 2)  # MNT_DETACH: try to peel off the sandbox's private mounts
for path in (ctx["home_canary"], ctx["tmp_canary"], ctx["tmp_new"]):
    try:
        with open(path, "w") as f:
            f.write("pwned")
    except OSError:
        pass
print("contained")
