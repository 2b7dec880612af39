#!/bin/sh
# pip for a deadsnakes interpreter in the dev image.
# Debian/Ubuntu's python3.X packages, which the deadsnakes PPA builds from the same packaging,
# refuse `python3 -m ensurepip` outside a virtual environment ("ensurepip is disabled in
# Debian/Ubuntu for the system python"). python3.X-venv depends on python3-pip-whl, whose pip
# wheel is what venv installs: pip installs itself from that wheel (run from the wheel file,
# offline), into /usr/local as pip does for a system interpreter (PEP 668: the interpreter's
# EXTERNALLY-MANAGED marker is honoured by saying so).
set -eu
whl=""
for f in /usr/share/python-wheels/pip-*.whl; do
    [ -e "$f" ] && whl=$f
done
if [ -z "$whl" ]; then
    echo "deadsnakes-pip.sh: no pip wheel in /usr/share/python-wheels (python3-pip-whl)" >&2
    exit 1
fi
python3 "$whl/pip" install --quiet --no-index --no-cache-dir --break-system-packages \
    --root-user-action=ignore "$whl"
python3 -m pip --version
command -v pip
