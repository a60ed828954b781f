# hostile: tries setuid(0), chmod of /tmp and /etc/passwd, and chown of its folder to root
# verdict: accepted
# needs: uid  (skipped where the sandbox lacks it: it would hit the host)
import os

out = "contained"
for attempt in (
    lambda: os.setuid(0),
    lambda: os.chmod("/etc/passwd", 0o666),
    lambda: os.chown(".", 0, 0),
    lambda: os.chmod("/tmp", 0o700),
):
    try:
        attempt()
        out = "ESCAPED"
    except OSError:
        pass
print(out)
