# hostile: kills the process group and session of its parent
# verdict: accepted
# needs: uid  (skipped where the sandbox lacks it: it would hit the host)
import os
import signal

out = "contained"
for target in (os.getpgid(os.getppid()), os.getsid(os.getppid())):
    try:
        os.killpg(target, signal.SIGKILL)
        out = "ESCAPED"
    except OSError:
        pass
print(out)
