"""venv (minimal): the interpreter makes a virtual environment (no pip) whose python runs in it."""

import subprocess
import sys
import tempfile
import venv

d = tempfile.mkdtemp() + "/v"
venv.create(d, with_pip=False, symlinks=True)
r = subprocess.run([d + "/bin/python", "-c",
                    "import sys; assert sys.prefix != sys.base_prefix; print(sys.prefix)"], check=False)
sys.exit(r.returncode)
