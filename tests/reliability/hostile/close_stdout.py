# hostile: closes its stdout and stderr, then prints
# verdict: wrong_answer | runtime_error
import os

os.close(1)
os.close(2)
print("contained")
