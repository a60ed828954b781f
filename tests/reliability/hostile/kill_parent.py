# hostile: sends SIGKILL to its parent (the sandbox worker)
# verdict: accepted
# needs: uid  (skipped where the sandbox lacks it: it would hit the host)
import os
import signal

try:
    os.kill(os.getppid(), signal.SIGKILL)
    print("ESCAPED killed parent")
except OSError:
    print("contained")
