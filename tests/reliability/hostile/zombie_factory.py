# hostile: forks 50 children that exit at once and never reaps them
# verdict: accepted
import os

for _ in range(50):
    if os.fork() == 0:
        os._exit(0)
print("contained")
