"""free-threaded (pythons[].freethreaded): the interpreter is the free-threaded build (the t
ABI) and the GIL stays off after importing the modules named by the arguments and every stdlib
C extension the interpreter has (built in or in lib-dynload): each declares free-threading
support, and one that did not would turn the GIL on."""

import importlib
import importlib.machinery
import importlib.util
import sys
import sysconfig

assert sysconfig.get_config_var("Py_GIL_DISABLED") == 1, "not a --disable-gil build"
assert sys.abiflags == "t", sys.abiflags
for m in sys.argv[1:]:
    importlib.import_module(m)
extensions = []
for name in sorted(sys.stdlib_module_names):
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        spec = None
    if spec is None:  # not built here (Windows-only modules, _tkinter, _gdbm ...)
        continue
    if spec.origin == "built-in" or isinstance(spec.loader, importlib.machinery.ExtensionFileLoader):
        importlib.import_module(name)
        extensions.append(name)
assert len(extensions) > 30, f"only {len(extensions)} C extensions found: {extensions}"
# sys._is_gil_enabled: 3.13 on (as is every free-threaded build); mypy reads the stdlib as 3.11
assert not sys._is_gil_enabled(), "the GIL is enabled"  # type: ignore[attr-defined]
print("free-threaded", sys.version, f"GIL off after {len(extensions)} C extensions")
