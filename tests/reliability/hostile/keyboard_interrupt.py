# hostile: sends itself SIGINT, as a Ctrl-C would
# verdict: runtime_error
import os
import signal
import time

os.kill(os.getpid(), signal.SIGINT)
time.sleep(5)
