#!/bin/sh
# no-package-caches (runtime, as root): no apt lists, apt archives or pip/user caches are left
# (apt's lock files may be). Argument, for tests only: a directory to look in instead of /.
set -e  # as sh -ec runs it
root=${1:-}
# shellcheck disable=SC2126  # grep -c exits 1 on a count of 0, which -e would take as a failure
n=$(find "$root/var/lib/apt/lists" "$root/var/cache/apt" "$root/root/.cache" "$root"/home/*/.cache \
  -mindepth 1 \( -type f -o -type l \) 2>/dev/null | grep -v '/lock$' | wc -l)
[ "$n" -eq 0 ] || { find "$root/var/lib/apt/lists" "$root/var/cache/apt" -type f | head; exit 1; }
