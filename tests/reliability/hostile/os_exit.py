# hostile: leaves with os._exit(7), skipping every cleanup
# verdict: runtime_error
import os

print("bye", flush=True)
os._exit(7)
