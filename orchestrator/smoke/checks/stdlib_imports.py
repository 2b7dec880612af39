"""stdlib-imports: the stdlib modules named by the arguments import (their C extensions load),
hashlib has SHA-3 and BLAKE2, zoneinfo finds its data, decimal is the C one, and the default
TLS context has CA certificates."""

import decimal
import hashlib
import importlib
import sqlite3
import ssl
import sys
import zoneinfo

for m in sys.argv[1:]:
    importlib.import_module(m)
hashlib.sha3_256(b"x")
hashlib.blake2b(b"x")
assert zoneinfo.ZoneInfo("Europe/Paris").key == "Europe/Paris"
assert decimal.__file__ is None or "_pydecimal" not in decimal.__file__
assert ssl.create_default_context().cert_store_stats()["x509_ca"] > 0, "empty CA store"
print("ok", ssl.OPENSSL_VERSION, sqlite3.sqlite_version)
