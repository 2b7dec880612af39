#!/bin/sh
# venv (runtime): python3 makes a virtual environment (without pip: the runtime has none) whose
# python runs inside it.
set -e  # as sh -ec runs it
d=$(mktemp -d)
python3 -m venv --without-pip "$d/v"
"$d/v/bin/python" -c "import sys; assert sys.prefix != sys.base_prefix"
