# hostile: sends UDP datagrams to the harness's UDP port on 127.0.0.1
# verdict: accepted
# needs: network_isolated  (skipped where the sandbox lacks it: it would hit the host)
import json
import socket
import sys

ctx = json.loads(sys.stdin.readline())
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sent = 0
for _ in range(20):
    try:
        s.sendto(b"pwned", ("127.0.0.1", ctx["udp_port"]))
        sent += 1
    except OSError:
        pass
print("contained")
