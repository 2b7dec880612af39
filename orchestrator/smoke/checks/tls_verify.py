"""tls-verify: a TLS connection to port 443 of the host named by the argument (the package
index's) verifies against the image's CA store."""

import socket
import ssl
import sys

host = sys.argv[1]
ctx = ssl.create_default_context()
with socket.create_connection((host, 443), timeout=20) as s, \
        ctx.wrap_socket(s, server_hostname=host) as t:
    cert = t.getpeercert()
    assert cert, "no peer certificate"  # a verified handshake has one
    print("verified", t.version(), cert["subject"])
