# hostile: sleeps: no CPU used, only the wall-clock limit stops it
# verdict: time_limit
import time

time.sleep(10_000)
