# hostile: starts `sleep` in the background through a shell and through subprocess, without waiting
# verdict: accepted
import os
import subprocess

os.system("nohup sleep 1000 >/dev/null 2>&1 &")
subprocess.Popen(["sleep", "1000"], start_new_session=True)
print("contained")
