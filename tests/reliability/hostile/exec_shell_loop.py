# hostile: replaces itself with a shell that loops forever (limits must survive exec)
# verdict: time_limit
import os

os.execv("/bin/sh", ["sh", "-c", "while :; do :; done"])
