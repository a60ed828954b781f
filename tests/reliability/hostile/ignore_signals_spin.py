# hostile: ignores SIGTERM, SIGINT, SIGHUP and SIGXCPU, then spins
# verdict: time_limit
import signal

for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGXCPU):
    signal.signal(s, signal.SIG_IGN)
while True:
    pass
