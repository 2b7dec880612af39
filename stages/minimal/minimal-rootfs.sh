#!/bin/bash
# minimal-rootfs.sh OUT PREFIX USER [PACKAGE...]
#
# Assembles OUT: every file of a minimal image but the CPython tree, which is a layer of its
# own (the runtime image's very layer). Runs in a stage FROM runtime-base with the tree
# mounted at PREFIX, so that what it copies is what the runtime image carries:
#  - the files of the packages owning the shared libraries the tree's ELF files load (ldd:
#    the whole closure), and of the library packages those depend on (libgcc-s1: glibc loads
#    it itself for thread cancellation and unwinding, where ldd cannot see it);
#  - the files of each data PACKAGE (ca-certificates, tzdata, netbase: whole, without their
#    dependencies, which are tools: openssl, debconf), the CA bundle update-ca-certificates
#    built in runtime-base (with images.yaml's CAs), its hashed links and OpenSSL's paths to
#    them (/usr/lib/ssl: the openssl package's links, not its binary);
#  - /etc/passwd and /etc/group (root, USER, nobody; no login shell, there is none), USER's
#    home, /root, /tmp (1777), os-release, nsswitch.conf, localtime;
#  - the dpkg status and file lists of the packages carried, base-files (os-release) among
#    them: what scanners and SBOM tools read; the apt sources they came from (text, read by
#    `orchestrator outdated` through the image's labels).
# Left out: documentation but the copyright files, manuals, translations, lintian overrides,
# every bin/ and sbin/ (no shell, no apt, no dpkg: the check at the end refuses any), and
# glibc's iconv modules (gconv/, 8 MB on bookworm): CPython has its own codecs.
set -euo pipefail

if [ "$#" -lt 3 ]; then
  echo "usage: $0 OUT PREFIX USER [PACKAGE...]" >&2
  exit 2
fi
out=$(realpath -m "$1") prefix=${2%/} user=$3
shift 3
data_packages=("$@")

die() {
  echo "minimal-rootfs: $*" >&2
  exit 1
}

is_elf() {
  [ "$(head -c4 "$1" | od -An -c | tr -d ' ')" = '177ELF' ]
}

installed() {
  [ "$(dpkg-query -W -f '${db:Status-Status}' "$1" 2>/dev/null)" = installed ]
}

# A package shipping a shared library in a library directory (its dependencies are followed).
is_library_package() {
  dpkg-query -L "$1" | grep -qE '^(/usr)?/lib(32|64|x32)?/([^/]+-linux-gnu[^/]*/)?[^/]+\.so(\.[0-9.]+)?$'
}

# The package(s) shipping library path $1, "pkg[:arch][, pkg...]", as dpkg names the path:
# with merged /usr, ldd says /lib/... where the package may say /usr/lib/... (or the reverse).
owner() {
  local real c found
  real=$(readlink -f "$1")
  for c in "$1" "$real" "${1#/usr}" "/usr$1" "${real#/usr}" "/usr$real"; do
    found=$(dpkg-query -S "$c" 2>/dev/null | grep -v '^diversion by' | head -n1) || true
    if [ -n "$found" ]; then
      echo "${found%%: *}"
      return 0
    fi
  done
  return 1
}

# 1. The shared libraries the tree's ELF files load.
declare -A libs=()
while IFS= read -r -d '' f; do
  is_elf "$f" || continue
  if ! listing=$(ldd "$f" 2>&1); then
    case $listing in
      *"not a dynamic executable"* | *"statically linked"*) continue ;;
      *) die "ldd $f: $listing" ;;
    esac
  fi
  while read -r first arrow path _; do
    if [ "$arrow" = "=>" ]; then
      [ "$path" != not ] || die "$f needs $first, which runtime-base lacks: add its package to packages.runtime"
      lib=$path
    elif [[ $first == /* ]]; then
      lib=$first  # the dynamic loader
    else
      continue  # the vDSO
    fi
    case $lib in "$prefix"/*) continue ;; esac  # our own (libpython)
    libs[$lib]=1
  done <<< "$listing"
done < <(find "$prefix" -type f -print0)
[ "${#libs[@]}" -gt 0 ] || die "no ELF file under $prefix links a shared library"

# 2. Their packages, and the library packages those depend on.
declare -A carry=()
queue=()
for lib in "${!libs[@]}"; do
  names=$(owner "$lib") || die "$lib (which the tree links) belongs to no package"
  IFS=', ' read -r -a found <<< "$names"
  for n in "${found[@]}"; do queue+=("${n%%:*}"); done
done
while [ "${#queue[@]}" -gt 0 ]; do
  p=${queue[0]}
  queue=("${queue[@]:1}")
  [ -z "${carry[$p]:-}" ] || continue
  carry[$p]=1
  IFS=',' read -r -a groups <<< "$(dpkg-query -W -f '${Depends}, ${Pre-Depends}' "$p")"
  for g in "${groups[@]}"; do
    IFS='|' read -r -a alternatives <<< "$g"
    for a in "${alternatives[@]}"; do
      name=$(sed -E 's/\([^)]*\)//g; s/\[[^]]*\]//g; s/[[:space:]]//g' <<< "$a")
      name=${name%%:*}
      [ -n "$name" ] || continue
      if installed "$name"; then  # the alternative installed is the one that counts
        if is_library_package "$name"; then queue+=("$name"); fi
        break
      fi
    done
  done
done
for p in "${data_packages[@]}"; do
  installed "$p" || die "$p is not installed in runtime-base: add it to packages.runtime"
  carry[$p]=1
done

# 3. Their files.
keep() {
  case $1 in
    /usr/share/doc/*/copyright) return 0 ;;
    /usr/share/doc/* | /usr/share/man/* | /usr/share/info/* | /usr/share/lintian/*) return 1 ;;
    /usr/share/locale/* | /usr/share/bug/* | /usr/share/gdb/* | /usr/share/gcc/*) return 1 ;;
    */bin/* | */sbin/* | /usr/libexec/* | */gconv/*) return 1 ;;
    /lib | /lib32 | /lib64 | /libx32) return 1 ;;  # merged /usr's links, made above
  esac
  [ -L "$1" ] || [ -f "$1" ]
}
mkdir -p "$out"
# merged /usr: /lib and /lib64 are links into /usr in runtime-base; the same here, so that a
# library lands once, whichever of its two paths its package names.
for d in /lib /lib32 /lib64 /libx32; do
  if [ -L "$d" ]; then
    mkdir -p "$out/$(readlink "$d")"
    ln -s "$(readlink "$d")" "$out$d"
  fi
done
files=$(mktemp)
for p in "${!carry[@]}"; do
  dpkg-query -L "$p" | while IFS= read -r f; do
    if keep "$f"; then printf '%s\0' "$f"; fi
  done
done > "$files"
# OpenSSL's configuration and where it looks for CAs (/usr/lib/ssl/cert.pem, certs/), links
# of the openssl package (not listed: its binary is not carried).
for f in /etc/ssl/certs /usr/local/share/ca-certificates /etc/ssl/openssl.cnf /usr/lib/ssl/cert.pem \
         /usr/lib/ssl/certs /usr/lib/ssl/openssl.cnf /etc/os-release /usr/lib/os-release \
         /etc/debian_version /etc/lsb-release /etc/nsswitch.conf /etc/localtime /etc/timezone \
         /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
  if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi
done >> "$files"
(cd / && xargs -0 -r cp -a --parents -t "$out") < "$files"  # from /: cp re-reads parents relative
rm -f "$files"

# 4. Users, home, /tmp.
uid=$(id -u "$user")
gid=$(id -g "$user")
home=$(getent passwd "$user" | cut -d: -f6)
getent passwd root "$user" nobody | awk -F: -v OFS=: '{ $7 = "/usr/sbin/nologin"; print }' \
  > "$out/etc/passwd"
getent group root "$gid" nogroup > "$out/etc/group"
chmod 0644 "$out/etc/passwd" "$out/etc/group"
install -d -m 0700 "$out/root"
install -d -m 1777 "$out/tmp"
install -d -m "$(stat -c %a "$home")" -o "$uid" -g "$gid" "$out$home"

# 5. What dpkg knows of them (base-files: the os-release copied above).
mapfile -t packages < <(printf '%s\n' "${!carry[@]}" base-files | sort -u)
mkdir -p "$out/var/lib/dpkg/info"
dpkg-query -s "${packages[@]}" > "$out/var/lib/dpkg/status"
for p in "${packages[@]}"; do
  for f in "/var/lib/dpkg/info/$p".{list,md5sums} "/var/lib/dpkg/info/$p":*.{list,md5sums}; do
    if [ -e "$f" ]; then cp -a "$f" "$out/var/lib/dpkg/info/"; fi
  done
done

# 6. Nothing to run but the interpreter.
bad=$(find "$out" \( -path '*/bin/*' -o -path '*/sbin/*' -o \( ! -type d \( -name sh -o -name bash \
        -o -name dash -o -name busybox -o -name apt -o -name apt-get -o -name dpkg \) \) \) -print)
[ -z "$bad" ] || die "would ship a shell, a package manager or a bin/ directory: $bad"

# Files made here get runtime-base's dpkg status time: the layer depends on what it copies.
find "$out" -newer /var/lib/dpkg/status -exec touch -h -r /var/lib/dpkg/status '{}' +
echo "minimal-rootfs: ${#packages[@]} packages (${packages[*]}), $(du -sb "$out" | cut -f1) bytes"
