"""free-threaded (pythons[].freethreaded): the interpreter is the free-threaded build (the t
ABI) and the GIL stays off after importing the modules named by the arguments, every stdlib C
module (each declares free-threading support; one that did not would turn the GIL on)."""

import importlib
import sys
import sysconfig

assert sysconfig.get_config_var("Py_GIL_DISABLED") == 1, "not a --disable-gil build"
assert sys.abiflags == "t", sys.abiflags
for m in sys.argv[1:]:
    importlib.import_module(m)
# sys._is_gil_enabled: 3.13 on (as is every free-threaded build); mypy reads the stdlib as 3.11
assert not sys._is_gil_enabled(), "the GIL is enabled"  # type: ignore[attr-defined]
print("free-threaded", sys.version)
