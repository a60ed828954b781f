# hostile: opens files until the descriptor limit
# verdict: accepted
import os

fds = []
try:
    while True:
        fds.append(os.open("/dev/null", os.O_RDONLY))
except OSError:
    pass
print("contained" if len(fds) < 10_000 else "ESCAPED no fd limit")
