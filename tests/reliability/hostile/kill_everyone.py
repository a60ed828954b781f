# hostile: sends SIGKILL to -1 (every process it may signal)
# verdict: runtime_error | accepted
# needs: uid  (skipped where the sandbox lacks it: it would hit the host)
import os
import signal

os.kill(-1, signal.SIGKILL)
print("contained")
