#!/bin/sh
# venv-with-pip (dev, under emulation): the dev image's pip serves a venv without its own copy
# (installing pip into the venv and compiling it took minutes per venv under QEMU).
set -e  # as sh -ec runs it
d=$(mktemp -d)
python3 -m venv --without-pip "$d/v"
python3 -m pip --python "$d/v/bin/python" list --format=freeze
