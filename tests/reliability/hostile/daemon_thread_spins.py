# hostile: leaves a daemon thread spinning after main prints its answer
# verdict: accepted
import threading


def spin():
    while True:
        pass


threading.Thread(target=spin, daemon=True).start()
print("contained")
