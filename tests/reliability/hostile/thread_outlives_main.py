# hostile: starts a non-daemon thread that spins forever, then returns from main
# verdict: time_limit
import threading


def spin():
    while True:
        pass


threading.Thread(target=spin).start()
print("contained")
