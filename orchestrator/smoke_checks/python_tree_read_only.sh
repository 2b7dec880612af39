#!/bin/sh
# python-tree-read-only: the default user can write nothing of the interpreter.
# Arguments: the interpreter's files (as ldd_resolves.sh).
set -e  # as sh -ec runs it
w=$(find "$@" -writable -print -quit 2>/dev/null)
[ -z "$w" ] || { echo "writable: $w"; exit 1; }
