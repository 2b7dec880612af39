#!/bin/sh
# on-path: each program named by the arguments is on PATH (python3 and python; pip in dev).
set -e  # as sh -ec runs it
for program in "$@"; do
  command -v "$program"
done
