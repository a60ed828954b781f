# hostile: each child forks again and sleeps, filling the process table with idle processes
# verdict: time_limit | accepted
# needs: uid  (skipped where the sandbox lacks it: it would hit the host)
import os
import time

for _ in range(10_000):
    try:
        if os.fork() == 0:
            time.sleep(1000)
    except OSError:
        break
print("contained")
