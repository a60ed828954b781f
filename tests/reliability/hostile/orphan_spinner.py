# hostile: forks a child that ignores SIGTERM/SIGHUP and spins after its parent exits
# verdict: accepted
import os
import signal

if os.fork() == 0:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    while True:
        pass
print("contained")
