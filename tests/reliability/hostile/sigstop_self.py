# hostile: stops itself with SIGSTOP, so it never exits on its own
# verdict: time_limit
import os
import signal

os.kill(os.getpid(), signal.SIGSTOP)
print("contained")
