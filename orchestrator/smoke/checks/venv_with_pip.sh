#!/bin/sh
# venv-with-pip (dev, native): python3 makes a virtual environment with pip in it.
set -e  # as sh -ec runs it
d=$(mktemp -d)
python3 -m venv "$d/v"
"$d/v/bin/python" -m pip --version
