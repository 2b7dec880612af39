#!/bin/sh
# ldd-resolves (as root): every ELF file (shared object or executable) of the interpreter finds
# each library it links. Arguments: the interpreter's files (its prefix; deadsnakes: the PPA's
# /usr/bin/python3.X and /usr/lib/python3.X).
set -e  # as sh -ec runs it
for d in "$@"; do [ -e "$d" ] || { echo "$d: no such file or directory"; exit 1; }; done
bad=0
checked=0
# shellcheck disable=SC2044  # the interpreter's file names hold no whitespace
for f in $(find "$@" -type f \( -name '*.so*' -o -perm -u+x \)); do
  if [ "$(head -c4 "$f" | od -An -c | tr -d ' ')" = '177ELF' ]; then
    checked=$((checked + 1))
    if ldd "$f" 2>&1 | grep -q 'not found'; then echo "$f:"; ldd "$f" | grep 'not found'; bad=1; fi
  fi
done
[ "$checked" -gt 0 ] || { echo "no ELF file under $*"; exit 1; }
exit $bad
