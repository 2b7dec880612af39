#!/bin/sh
# no-compilers (runtime): no toolchain program on PATH and no toolchain package installed.
set -e  # as sh -ec runs it
for t in gcc cc c++ g++ make as ld; do
  if command -v "$t"; then echo "found $t"; exit 1; fi
done
for p in gcc make binutils libc6-dev; do
  # shellcheck disable=SC2016  # ${Status} is a field of dpkg-query's format, not the shell's
  if dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
    echo "package $p installed"; exit 1
  fi
done
