"""jit (images whose CPython has the JIT built in and off by default: profiles.*.jit yes-off,
label optimizations "jit-yes-off"): the JIT is there (sys._jit.is_available()), off unless
asked for, and `PYTHON_JIT=1 python3 -c ...` turns it on and runs a hot loop right under it
(a child interpreter: no shell needed, so minimal images run it too)."""

import os
import subprocess
import sys

jit = getattr(sys, "_jit", None)
assert jit is not None and jit.is_available(), "sys._jit.is_available() is false: no JIT built in"
assert not jit.is_enabled(), "the JIT is on without PYTHON_JIT=1 (yes-off builds it off)"
CHILD = """
import sys
def f(n):
    t = 0
    for i in range(n):
        t += i * i
    return t
assert f(300000) == sum(i * i for i in range(300000)), "wrong result under the JIT"
assert sys._jit.is_enabled(), "PYTHON_JIT=1 did not turn the JIT on"
print("PYTHON_JIT=1: JIT enabled, hot loop ok")
"""
done = subprocess.run([sys.executable, "-c", CHILD], env={**os.environ, "PYTHON_JIT": "1"},
                      capture_output=True, text=True, timeout=300, check=False)
assert done.returncode == 0, f"PYTHON_JIT=1 python3 exited {done.returncode}: {done.stderr[-1500:]}"
print(done.stdout.strip(), "| without PYTHON_JIT: off |", sys.version)
