# hostile: connects to a TCP listener the harness opened on 127.0.0.1
# verdict: accepted
# needs: network_isolated  (skipped where the sandbox lacks it: it would hit the host)
import json
import socket
import sys

ctx = json.loads(sys.stdin.readline())
s = socket.socket()
s.settimeout(1)
try:
    s.connect(("127.0.0.1", ctx["port"]))
    s.sendall(b"pwned")
    print("ESCAPED connected")
except OSError:
    print("contained")
