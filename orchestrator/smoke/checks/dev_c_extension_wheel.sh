#!/bin/sh
# dev-c-extension-wheel (dev, native): a C extension built into a wheel (python3 -m build),
# repaired by auditwheel, installed into a new venv and imported there.
# Argument: the extension's C source (spam.c).
set -e  # as sh -ec runs it
cd "$(mktemp -d)"
mkdir -p pkg && cd pkg
printf '%s' "$1" > spam.c
cat > setup.py <<'SETUP'
from setuptools import Extension, setup
setup(name="spam", version="1.0", ext_modules=[Extension("spam", ["spam.c"])])
SETUP
python3 -m build --wheel --outdir dist . > build.log 2>&1 || { tail -30 build.log; exit 1; }
auditwheel repair --wheel-dir wheelhouse dist/*.whl
ls wheelhouse
python3 -m venv ../venv
../venv/bin/pip install --no-index --quiet wheelhouse/*.whl
../venv/bin/python -c "import spam; assert spam.add(2, 3) == 5; print('spam ok')"
