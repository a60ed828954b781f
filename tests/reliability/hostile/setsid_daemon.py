# hostile: double-forks, calls setsid and leaves a grandchild sleeping (a daemon)
# verdict: accepted
import os
import time

if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.closerange(0, 3)
        time.sleep(1000)
    os._exit(0)
print("contained")
