# hostile: forks forever, ignoring fork errors (the per-uid process limit is the wall)
# verdict: time_limit
# needs: uid  (skipped where the sandbox lacks it: it would hit the host)
import contextlib
import os

while True:
    with contextlib.suppress(OSError):
        os.fork()
