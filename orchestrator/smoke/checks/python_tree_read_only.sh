#!/bin/sh
# python-tree-read-only: the default user can write nothing of the interpreter.
# Arguments: the interpreter's files (as ldd_resolves.sh).
set -e  # as sh -ec runs it
for d in "$@"; do [ -e "$d" ] || { echo "$d: no such file or directory"; exit 1; }; done
w=$(find "$@" -writable -print -quit 2>/dev/null)
[ -z "$w" ] || { echo "writable: $w"; exit 1; }
