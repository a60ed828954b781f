# hostile: resolves a host name and connects to a public address
# verdict: accepted
# needs: network_isolated  (skipped where the sandbox lacks it: it would hit the host)
import socket

out = "contained"
for target in (("1.1.1.1", 80), ("pypi.org", 443)):
    try:
        socket.create_connection(target, timeout=1).close()
        out = "ESCAPED " + target[0]
    except OSError:
        pass
print(out)
