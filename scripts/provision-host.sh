#!/usr/bin/env bash
# provision-host.sh - turn a bare Debian 12 (bookworm) machine into a build
# host for the base-image orchestrator. Idempotent: every step checks whether
# its result is already there and says "skip" if so; safe to re-run.
#
# Steps:
#   1 packages   apt-get install docker.io mmdebstrap arch-test docker-registry iproute2 ...
#   2 qemu       qemu-user-static + binfmt_misc: arm64 containers and RUN steps
#                under emulation (linux/arm64 images are built on this amd64 host)
#   3 buildkit   docker.io/docker-cli/docker-buildx .debs from Debian 13 (trixie)
#                -> dockerd 26.1 + buildx 0.13 (separate apt state, host apt
#                config untouched)
#   4 dockerd    start dockerd (detached) on the containerd image store unless
#                it answers on it already; a dockerd it started whose docker0
#                bridge is gone is restarted (any other: an error naming the
#                fix); check BuildKit is the builder and lists linux/arm64
#   5 registry   docker-registry on ${ORCH_REGISTRY} (loopback only)
#   6 images     mmdebstrap minbase bookworm + trixie (Debian) and noble + resolute
#                (Ubuntu, with trixie's ubuntu-keyring) for amd64 (and arm64:
#                ORCH_ARM64_SUITES; maintainer scripts under qemu), -updates and
#                -security at creation,
#                slimmed like the official debian:*-slim / ubuntu:* images, docker
#                import --platform, pushed as one OCI index per suite:
#                ${ORCH_REGISTRY}/debian:<suite>-slim, ${ORCH_REGISTRY}/ubuntu:<suite>
#   7 mirror     CPython source mirror laid out like python.org/ftp/python, holding
#                the releases tests/e2e/images.yaml pins, filled from Debian source
#                packages (upstream tarballs), served on 127.0.0.1:${ORCH_MIRROR_PORT};
#                a deadsnakes-shaped test PPA (scripts/provision-ubuntu.sh)
#   8 pyenv      deterministic pyenv-<version>.tar.gz from /root/.pyenv (the version
#                tests/e2e/images.yaml names)
#   9 smoke      `docker buildx build --network host` reaching the mirror, and an
#                arm64 RUN under emulation (also --network host, as the builds)
#  10 cosign     cosign 2.5 .deb from Debian 13 (trixie), same private apt state as
#                step 3: signs images and attests SBOMs/provenance
#  11 go tools   the syft and grype tools/go-tools.txt pins, built with Go by
#                `scripts/install-go-tools.sh` into ${ORCH_TOOLS_DIR}/bin/{syft,grype}:
#                syft makes the SBOMs the push attests, grype is the scan gate's scanner
#                (skip: the pinned build is there; needs Go 1.26 on PATH or in
#                /usr/local/go, and the Go module proxy)
#   summary      versions, registry catalog, image digests, mirror sha256s
#
# The mirror's content, the pyenv tarball, the registry queries and the summary are Python that
# reuses the orchestrator package (hostkit: `python -m hostkit`), run with the
# project's venv: `make install` (which `make provision` runs first) makes .venv. hostkit also
# decides what bash then does: each suite's base image name and family (from the distros of
# tests/e2e/images.yaml), step 6's architectures and whether a base is current, needs a new
# index or a new rootfs (its recipe marker), and steps 3, 4 and 10's version and engine checks
# (the output of dpkg-query, docker buildx version/inspect, dockerd --version, docker info).
#
# Usage: provision-host.sh [STEP ...]   (default: all steps; STEP is a number
#        or name above; the summary is always printed)
#
# Environment overrides:
#   ORCH_HOST_STATE    state dir (apt state, rootfs, registry storage)
#                                                  default /var/lib/orchestrator-host
#   ORCH_TOOLS_DIR     the Go tools (step 11)      default ${ORCH_HOST_STATE}/tools
#                      (where the orchestrator looks: set it the same for both)
#   ORCH_MIRROR_DIR    mirror document root        default /srv/orchestrator-mirror
#   ORCH_MIRROR_PORT   mirror port on 127.0.0.1    default 8700
#   ORCH_REGISTRY      registry host:port          default 127.0.0.1:5000
#                      (must be a loopback address: it is trusted over plain
#                      HTTP by dockerd without "insecure-registries")
#   ORCH_HOST_ETC      config dir (registry.yml)   default /etc/orchestrator-host
#   ORCH_HOST_LOG_DIR  service logs                default /var/log/orchestrator-host
#   ORCH_HOST_RUN_DIR  service pid files           default /run/orchestrator-host
#   ORCH_DEBIAN_MIRROR Debian archive              default http://deb.debian.org/debian
#   ORCH_DEBIAN_SECURITY_MIRROR                    default http://deb.debian.org/debian-security
#   ORCH_PYENV_ROOT    pyenv checkout              default /root/.pyenv
#   ORCH_HOSTKIT_PYTHON  python for hostkit/       default <repo>/.venv/bin/python
#   ORCH_BASE_SUITES   suites with a base image    default "bookworm trixie noble resolute"
#   ORCH_ARM64_SUITES  suites with an arm64 base   default "bookworm trixie resolute"
#                      (an Ubuntu suite gets one where an archive serves its binary-arm64:
#                      resolute on the main archive; noble only on ports, unreachable here)
#   ORCH_UBUNTU_MIRROR, ORCH_UBUNTU_SECURITY_MIRROR, ORCH_UBUNTU_PORTS_MIRROR
#                      Ubuntu archives (defaults: archive/security/ports.ubuntu.com)
set -euo pipefail

ORCH_HOST_STATE=${ORCH_HOST_STATE:-/var/lib/orchestrator-host}
ORCH_MIRROR_DIR=${ORCH_MIRROR_DIR:-/srv/orchestrator-mirror}
ORCH_MIRROR_PORT=${ORCH_MIRROR_PORT:-8700}
ORCH_REGISTRY=${ORCH_REGISTRY:-127.0.0.1:5000}
ORCH_HOST_ETC=${ORCH_HOST_ETC:-/etc/orchestrator-host}
ORCH_HOST_LOG_DIR=${ORCH_HOST_LOG_DIR:-/var/log/orchestrator-host}
ORCH_HOST_RUN_DIR=${ORCH_HOST_RUN_DIR:-/run/orchestrator-host}
ORCH_DEBIAN_MIRROR=${ORCH_DEBIAN_MIRROR:-http://deb.debian.org/debian}
ORCH_DEBIAN_SECURITY_MIRROR=${ORCH_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
ORCH_PYENV_ROOT=${ORCH_PYENV_ROOT:-/root/.pyenv}
ORCH_TOOLS_DIR=${ORCH_TOOLS_DIR:-${ORCH_HOST_STATE}/tools}
export ORCH_HOST_STATE ORCH_TOOLS_DIR ORCH_MIRROR_DIR ORCH_MIRROR_PORT ORCH_REGISTRY \
    ORCH_HOST_ETC ORCH_HOST_LOG_DIR ORCH_HOST_RUN_DIR ORCH_DEBIAN_MIRROR \
    ORCH_DEBIAN_SECURITY_MIRROR ORCH_PYENV_ROOT

export DEBIAN_FRONTEND=noninteractive
export PATH="${PATH}:/usr/local/sbin:/usr/sbin:/sbin"
# Do not let the caller's locale/umask leak into generated files.
export LC_ALL=C.UTF-8
umask 022

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
HOST_SERVICES=${SCRIPT_DIR}/host-services.sh
HOSTKIT_PYTHON=${ORCH_HOSTKIT_PYTHON:-$REPO_ROOT/.venv/bin/python}
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
# shellcheck source=scripts/provision-ubuntu.sh
source "$SCRIPT_DIR/provision-ubuntu.sh"

# iproute2: `ip link show docker0` (host-services.sh checks dockerd's bridge is there)
HOST_PACKAGES=(docker.io mmdebstrap arch-test docker-registry gnupg curl ca-certificates
    xz-utils dpkg-dev apt-utils jq python3 qemu-user-static binfmt-support iproute2)
TRIXIE_DEBS=(docker.io docker-cli docker-buildx)
WANT_COSIGN=2.5
WANT_BUILDX=0.13
WANT_DOCKERD=26.1
# Suites with a base image. `make test` asks for bookworm + noble (CI budget); bases made by an
# earlier run are kept.
read -r -a BASE_SUITES <<<"${ORCH_BASE_SUITES:-bookworm trixie noble resolute}"
# Suites that also get an arm64 base (the others: amd64 only). `make test` builds arm64 on
# bookworm only (CI budget); `make test-full` and `make demo` ask for every Debian suite.
read -r -a ARM64_SUITES <<<"${ORCH_ARM64_SUITES:-bookworm trixie resolute}"
# Bump when the base image recipe changes: hosts provisioned with an older recipe rebuild
# their base images. 2: the suite's -updates/-security packages are applied (as in the
# official debian:*-slim images, which are regenerated with them).
# 3: one rootfs per architecture (amd64, arm64), published as one multi-platform index.
# 4: mmdebstrap (one call per suite and architecture, every pocket at creation) instead of
# debootstrap + a second stage under qemu + an upgrade pass.
BASE_RECIPE=4

# ----------------------------------------------------------------- helpers
say() { printf '[provision] %s\n' "$*"; }
did() { printf '[provision]   done: %s\n' "$*"; }
skip() { printf '[provision]   skip: %s\n' "$*"; }
ok() { printf '[provision]   ok: %s\n' "$*"; }
warn() { printf '[provision]   WARNING: %s\n' "$*" >&2; }
die() {
    printf '[provision] ERROR: %s\n' "$*" >&2
    exit 1
}

# While we install packages, keep maintainer scripts from starting distro
# services (docker.io, containerd, docker-registry on *:5000): all services are
# started by host-services.sh with our own configuration. Uses a temporary
# /usr/sbin/policy-rc.d unless the host already has one.
POLICY_RC_D=/usr/sbin/policy-rc.d
POLICY_RC_D_TEMP=0
block_service_starts() {
    [[ -e $POLICY_RC_D ]] && return 0
    printf '#!/bin/sh\n# temporary, written by provision-host.sh\nexit 101\n' >"$POLICY_RC_D"
    chmod 0755 "$POLICY_RC_D"
    POLICY_RC_D_TEMP=1
}
unblock_service_starts() {
    if ((POLICY_RC_D_TEMP)); then
        rm -f "$POLICY_RC_D"
        POLICY_RC_D_TEMP=0
    fi
}

TMP_DIRS=()
cleanup() {
    local d
    unblock_service_starts
    for d in "${TMP_DIRS[@]}"; do
        [[ -d $d ]] || continue
        # gpg may have spawned an agent for a temporary GNUPGHOME.
        if [[ -d $d/gnupg ]]; then gpgconf --homedir "$d/gnupg" --kill all >/dev/null 2>&1 || true; fi
        rm -rf --one-file-system "$d"
    done
}
trap cleanup EXIT
mktempdir() {
    local d
    d=$(mktemp -d "${TMPDIR:-/tmp}/provision-host.XXXXXX")
    TMP_DIRS+=("$d")
    printf '%s\n' "$d"
}

declare -A STEP_TIME=()
STEP_ORDER=()
STEP_T0=0
now() { date +%s.%N; }
step_begin() {
    STEP_ORDER+=("$1")
    STEP_T0=$(now)
    say "== step $1"
}
step_end() {
    local t
    t=$(awk -v a="$STEP_T0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
    STEP_TIME[$1]=$t
    say "== step $1 finished in ${t}s"
}

pkg_installed() {
    [[ $(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null) == "ii " ]]
}
pkg_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || true; }

# Writes stdin to $1 only if the content differs; returns 0 if it changed.
write_if_changed() {
    local dst=$1 tmp
    tmp=$(mktemp "${dst}.XXXXXX")
    cat >"$tmp"
    if [[ -f $dst ]] && cmp -s "$tmp" "$dst"; then
        rm -f "$tmp"
        return 1
    fi
    chmod 0644 "$tmp"
    mv -f "$tmp" "$dst"
    return 0
}

APT_UPDATED=0
host_apt_update() {
    if ((APT_UPDATED)); then return 0; fi
    say "  apt-get update (host sources)"
    apt-get update -qq
    APT_UPDATED=1
}

# apt-get (or APT_TOOL=apt-cache) against a private sources list and private lists/cache
# directories, so the host's /etc/apt and /var/lib/apt/lists stay untouched.
private_apt() {
    local dir=$1
    shift
    "${APT_TOOL:-apt-get}" -q \
        -o Dir::Etc::SourceList="$dir/sources.list" \
        -o Dir::Etc::SourceParts="$dir/sources.list.d" \
        -o Dir::Etc::Preferences=/dev/null \
        -o Dir::Etc::PreferencesParts="$dir/preferences.d" \
        -o Dir::State::Lists="$dir/lists" \
        -o Dir::Cache="$dir/cache" \
        "$@"
}
private_apt_init() {
    local dir=$1
    mkdir -p "$dir/sources.list.d" "$dir/preferences.d" "$dir/lists/partial" \
        "$dir/cache/archives/partial" "$dir/download"
    # apt downloads as the unprivileged _apt user when it can write there.
    if getent passwd _apt >/dev/null; then
        chown _apt:root "$dir/lists/partial" "$dir/cache/archives/partial" "$dir/download"
    fi
}
# True if the private lists are missing or older than $2 seconds.
private_apt_stale() {
    local dir=$1 max_age=$2 newest
    newest=$(find "$dir/lists" -maxdepth 1 -name '*Release' -printf '%T@\n' 2>/dev/null | sort -n | tail -n1)
    [[ -z $newest ]] && return 0
    (($(date +%s) - ${newest%.*} > max_age))
}

# The host kit: python -m hostkit COMMAND (mirror, served, pyenv, sums, registry-digest,
# summary, suites, base-arches, base-state, debs-at, version-in, docker-store, dockerd-check)
# from the repository root, with the project's venv.
hostkit() {
    [[ -x $HOSTKIT_PYTHON ]] ||
        die "$HOSTKIT_PYTHON not found: run \`make install\` first (it makes .venv with the orchestrator package), or set ORCH_HOSTKIT_PYTHON"
    (cd "$REPO_ROOT" && ORCH_DEBIAN_KEYRING=$KEYRING "$HOSTKIT_PYTHON" -m hostkit "$@")
}
# repo tag: the digest (an index's own digest for a multi-platform tag); status 1 if there is
# no such tag, >= 2 if the registry did not answer (one line on stderr).
registry_digest() { hostkit registry-digest "$1" "$2"; }
registry_has_tag() {
    local rc=0
    registry_digest "$1" "$2" >/dev/null || rc=$?
    ((rc <= 1)) || die "cannot ask ${ORCH_REGISTRY} whether it has $1:$2"
    return "$rc"
}

# The suites' base images, as tests/e2e/images.yaml names them (hostkit suites: each distro's
# `image` and `family`): SUITE_REPO[bookworm]=debian SUITE_TAG[bookworm]=bookworm-slim
# SUITE_FAMILY[bookworm]=debian. Read once (one hostkit call), for the suites of BASE_SUITES;
# a suite the matrix has no distro for is an error.
declare -A SUITE_REPO=() SUITE_TAG=() SUITE_FAMILY=()
load_suites() {
    ((${#SUITE_REPO[@]})) && return 0
    local table suite repo tag family
    table=$(hostkit suites "${BASE_SUITES[@]}") || return 1
    while read -r suite repo tag family; do
        [[ -n $suite ]] || continue
        SUITE_REPO[$suite]=$repo
        SUITE_TAG[$suite]=$tag
        SUITE_FAMILY[$suite]=$family
    done <<<"$table"
}
is_ubuntu_suite() {
    [[ -n ${SUITE_FAMILY[$1]:-} ]] || die "suite $1 is not in the suite table (load_suites)"
    [[ ${SUITE_FAMILY[$1]} == ubuntu ]]
}
# Registry repository and tag of a suite's base: debian:<suite>-slim, ubuntu:<suite>.
suite_repo() { printf '%s\n' "${SUITE_REPO[$1]:?suite $1 is not in the suite table (load_suites)}"; }
suite_tag() { printf '%s\n' "${SUITE_TAG[$1]:?suite $1 is not in the suite table (load_suites)}"; }

# Version checks (hostkit/dockerd.py): status 0 when every PACKAGE[=X.Y] is installed (at an
# X.Y.* version; Debian's revision and an epoch aside).
debs_at() {
    dpkg-query -W -f='${Package}\t${db:Status-Abbrev}\t${Version}\n' "${@%%=*}" 2>/dev/null |
        hostkit debs-at "$@" >/dev/null
}

# --------------------------------------------------------------- 1 packages
step_packages() {
    local missing=() p
    for p in "${HOST_PACKAGES[@]}"; do
        pkg_installed "$p" || missing+=("$p")
    done
    if ((${#missing[@]} == 0)); then
        skip "all host packages installed (${HOST_PACKAGES[*]})"
        return 0
    fi
    host_apt_update
    say "  installing: ${missing[*]}"
    block_service_starts
    apt-get install -y -q --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        "${missing[@]}" </dev/null
    unblock_service_starts
    did "installed ${missing[*]}"
}

# ------------------------------------------------------------------- 2 qemu
# arm64 containers (runtime stages' apt steps, smoke tests) run under qemu-user via
# binfmt_misc. The F flag (qemu-user-static registers it) lets containers and chroots use the
# host's interpreter without a copy inside them. CPython itself is cross-compiled, never
# compiled under emulation.
step_qemu() {
    if [[ ! -e /proc/sys/fs/binfmt_misc/register ]]; then
        mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
        did "mounted binfmt_misc"
    fi
    if [[ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]]; then
        update-binfmts --enable qemu-aarch64 || die "update-binfmts --enable qemu-aarch64 failed"
        did "enabled qemu-aarch64"
    fi
    local entry=/proc/sys/fs/binfmt_misc/qemu-aarch64
    [[ $(head -n1 "$entry") == enabled ]] || die "$entry is not enabled"
    grep -q '^flags: .*F' "$entry" || die "$entry lacks the F (fix binary) flag: $(grep flags "$entry")"
    ok "binfmt qemu-aarch64: $(grep '^interpreter' "$entry"), $(grep '^flags' "$entry")"
}

# --------------------------------------------------------------- 3 buildkit
buildkit_upgraded() {
    local p specs=()
    for p in "${TRIXIE_DEBS[@]}"; do
        case $p in
            docker.io) specs+=("$p=$WANT_DOCKERD") ;;
            docker-buildx) specs+=("$p=$WANT_BUILDX") ;;
            *) specs+=("$p") ;;
        esac
    done
    debs_at "${specs[@]}"
}

step_buildkit() {
    local dir=$ORCH_HOST_STATE/apt-trixie p debs=()
    if buildkit_upgraded; then
        skip "trixie docker packages installed (docker.io $(pkg_version docker.io), docker-cli $(pkg_version docker-cli), docker-buildx $(pkg_version docker-buildx))"
    else
        trixie_apt_init "$dir"
        rm -f "$dir"/download/*.deb
        say "  apt-get download ${TRIXIE_DEBS[*]} (trixie)"
        (cd "$dir/download" && private_apt "$dir" download "${TRIXIE_DEBS[@]}")
        # Order matters: dpkg handles the archives in the given order, and
        # docker-cli Breaks docker.io (<< 26.1.4) - the docker.io upgrade has
        # to be unpacked first (no --auto-deconfigure/--force-* needed then).
        for p in "${TRIXIE_DEBS[@]}"; do
            debs+=("$(compgen -G "$dir/download/${p}_*.deb")") || die "apt-get download did not fetch $p"
        done
        for p in "${debs[@]}"; do
            say "    $(dpkg-deb -f "$p" Package Version | paste -sd' ')  deps: $(dpkg-deb -f "$p" Depends)"
        done
        say "  dpkg -i ${debs[*]##*/}"
        # confold: keep any local edits of /etc/default/docker etc.
        block_service_starts
        if ! dpkg -i --force-confdef --force-confold "${debs[@]}" </dev/null; then
            die "dpkg -i of the trixie docker packages failed (see above); not forcing dependencies"
        fi
        unblock_service_starts
        buildkit_upgraded || die "trixie docker packages not at the expected versions after dpkg -i"
        did "installed docker.io $(pkg_version docker.io), docker-cli $(pkg_version docker-cli), docker-buildx $(pkg_version docker-buildx)"
    fi
    # /usr/local/bin/docker (if any) comes first on PATH: it must still find
    # the buildx plugin in /usr/libexec/docker/cli-plugins.
    local bx dv
    bx=$(docker buildx version 2>&1) || die "\`docker buildx version\` failed ($(command -v docker)): $bx"
    # e.g. "github.com/docker/buildx 0.13.1+ds1 0.13.1+ds1-3" (Debian) or "... v0.13.1 ..."
    hostkit version-in buildx "$WANT_BUILDX" <<<"$bx" >/dev/null ||
        die "\`docker buildx version\` is not ${WANT_BUILDX}.x: $bx (client $(command -v docker))"
    say "  docker ($(command -v docker)) sees: $bx"
    dv=$(dockerd --version 2>&1) || true
    say "  $dv"
    hostkit version-in dockerd "$WANT_DOCKERD" <<<"$dv" >/dev/null || die "dockerd is not ${WANT_DOCKERD}.x"
}

# ---------------------------------------------------------------- 4 dockerd
step_dockerd() {
    mkdir -p "$ORCH_HOST_LOG_DIR" "$ORCH_HOST_RUN_DIR" "$ORCH_HOST_ETC"
    # BuildKit is the default builder of dockerd >= 23 and 127.0.0.0/8 is an insecure
    # (plain HTTP) registry range by default. The one setting we need is the containerd
    # image store, in dockerd's own config file (host-services.sh passes --config-file).
    local cfg=$ORCH_HOST_ETC/dockerd.json
    printf '%s\n' '{"features": {"containerd-snapshotter": true}}' | write_if_changed "$cfg" \
        && say "  wrote $cfg (containerd image store)" || true
    local info
    # `docker info --format` exits 0 with an empty answer when no daemon answers: ask first
    if docker info >/dev/null 2>&1 && info=$(docker info --format '{{json .}}' 2>/dev/null) \
        && [[ $(hostkit docker-store <<<"$info") == classic ]]; then
        # Migration from the classic store: nothing is carried over. The classic store's
        # images stay on disk under /var/lib/docker/image (invisible to the new store); the
        # base images are pulled again from the local registry by digest, everything else
        # is rebuilt (BuildKit's cache is per store).
        say "  dockerd runs on the classic image store: restarting it on the containerd store"
        "$HOST_SERVICES" stop dockerd
        docker info >/dev/null 2>&1 && die "a dockerd not started by host-services.sh runs on the classic store; stop it and re-run"
    fi
    # start: a dockerd host-services started whose default bridge is gone (docker0 deleted,
    # e.g. by a second dockerd that tests ran beside it, while dockerd still lists its `bridge`
    # network) is restarted, saying so; one it did not start is an error naming the fix.
    "$HOST_SERVICES" start dockerd
    "$HOST_SERVICES" status dockerd || die "dockerd is not whole after \`$HOST_SERVICES start dockerd\` (see the line above)"
    # the store, linux/arm64 in BuildKit, dockerd ${WANT_DOCKERD}.x, 127.0.0.0/8 insecure, the docker
    # driver: checked (and said) by hostkit/dockerd.py from what docker info and buildx say
    local inspect
    if ! docker info >/dev/null 2>&1 || ! info=$(docker info --format '{{json .}}'); then
        die "\`docker info\` failed after \`$HOST_SERVICES start dockerd\`"
    fi
    inspect=$(docker buildx inspect 2>&1) || true
    hostkit dockerd-check "$WANT_DOCKERD" --info "$info" --inspect "$inspect" || exit 1
}

# --------------------------------------------------------------- 5 registry
step_registry() {
    local cfg=$ORCH_HOST_ETC/registry.yml store=$ORCH_HOST_STATE/registry pid
    case ${ORCH_REGISTRY%:*} in
        127.* | localhost | '[::1]') ;;
        *) die "ORCH_REGISTRY=$ORCH_REGISTRY is not a loopback address" ;;
    esac
    mkdir -p "$ORCH_HOST_ETC" "$store"
    if write_if_changed "$cfg" <<EOF; then
# Written by provision-host.sh: local registry for the base-image
# orchestrator, loopback only.
version: 0.1
log:
  level: info
  fields:
    service: registry
storage:
  filesystem:
    rootdirectory: ${store}
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: ${ORCH_REGISTRY}
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
EOF
        did "wrote $cfg"
        if pid=$(cat "$ORCH_HOST_RUN_DIR/registry.pid" 2>/dev/null) && kill -0 "$pid" 2>/dev/null; then
            "$HOST_SERVICES" stop registry
        fi
    else
        skip "$cfg up to date"
    fi
    # start: something host-services did not start on the registry's port (the distro's
    # docker-registry service, another registry, anything) is an error naming it (pid,
    # command) and the fix, never a kill
    "$HOST_SERVICES" start registry
    if command -v ss >/dev/null; then
        say "  listening: $(ss -Hltn "sport = :${ORCH_REGISTRY##*:}" | awk '{print $4}' | paste -sd' ')"
    fi
}

# ----------------------------------------------------------------- 6 images
# Official debian:*-slim style configuration, written into a rootfs.
# dpkg's path excludes of the official slim images (the image's /etc/dpkg/dpkg.cfg.d/docker,
# and in effect while mmdebstrap installs).
slim_dpkg_excludes() {
    cat <<'EOF'
# Slim image: documentation, manual pages and translations are not installed
# (keeps later "apt-get install" in containers slim as well).
path-exclude /usr/share/doc/*
# copyright files are kept for license compliance
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
EOF
}

write_slim_config() {
    local root=$1 suite=$2
    mkdir -p "$root/etc/dpkg/dpkg.cfg.d" "$root/etc/apt/apt.conf.d" "$root/etc/apt/sources.list.d"
    slim_dpkg_excludes >"$root/etc/dpkg/dpkg.cfg.d/docker"
    cat >"$root/etc/dpkg/dpkg.cfg.d/docker-apt-speedup" <<'EOF'
# No fsync per file: containers are thrown away rather than recovered.
force-unsafe-io
EOF
    cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
# Drop downloaded .debs and the binary package caches after every dpkg/apt
# run so they never end up in an image layer.
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
    cat >"$root/etc/apt/apt.conf.d/docker-autoremove-suggests" <<'EOF'
# Let "apt-get purge --auto-remove" remove packages that are only kept
# because something else Suggests them (e.g. build deps such as dpkg-dev,
# make, gcc after a source build).
Apt::AutoRemove::SuggestsImportant "false";
EOF
    cat >"$root/etc/apt/apt.conf.d/docker-no-languages" <<'EOF'
# No Translation-* indexes.
Acquire::Languages "none";
EOF
    cat >"$root/etc/apt/apt.conf.d/docker-gzip-indexes" <<'EOF'
# Keep downloaded package indexes compressed on disk.
Acquire::GzipIndexes "true";
EOF
    if is_ubuntu_suite "$suite"; then
        write_ubuntu_sources "$root" "$suite" "$3"
        return 0
    fi
    rm -f "$root/etc/apt/sources.list"
    cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: http://deb.debian.org/debian
Suites: ${suite} ${suite}-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: ${suite}-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
}

# Remove what the dpkg excludes above would not have installed.
slim_rootfs() {
    local root=$1 d
    for d in usr/share/doc usr/share/groff usr/share/info usr/share/linda \
        usr/share/lintian usr/share/locale usr/share/man; do
        [[ -d $root/$d ]] || continue
        find "$root/$d" -mindepth 1 ! -type d ! -path "$root/usr/share/doc/*/copyright" -delete
        find "$root/$d" -mindepth 1 -depth -type d -empty -delete
    done
    # No package lists, caches, logs or host identity in the image.
    rm -rf "${root:?}"/var/lib/apt/lists/*
    rm -f "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/archives/partial/* \
        "$root"/var/cache/apt/*.bin "$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old \
        "$root"/var/cache/ldconfig/aux-cache
    rm -f "$root"/var/log/bootstrap.log "$root"/var/log/dpkg.log "$root"/var/log/alternatives.log \
        "$root"/var/log/apt/*
    rm -rf "${root:?}"/tmp/* "${root:?}"/var/tmp/*
    rm -f "$root/etc/resolv.conf"
    echo localhost >"$root/etc/hostname"
    [[ -e $root/etc/machine-id ]] && : >"$root/etc/machine-id"
    return 0
}

# Unmount anything left mounted below $1 (an interrupted bootstrap).
umount_below() {
    local m
    findmnt -rn -o TARGET | awk -v p="$1/" 'index($0, p) == 1' | sort -r | while read -r m; do
        umount -l "$m" || true
    done
}

# The apt sources a suite's rootfs is made from, one-line format, one per line: the release
# with its -updates and -security pockets (Ubuntu: the pockets ubuntu_pockets found consistent,
# in $UBUNTU_POCKETS), so the bootstrap installs the current packages at once, as the official
# slim images have them.
bootstrap_sources() {
    local suite=$1 arch=$2 pocket mirror
    local -a pockets
    if ! is_ubuntu_suite "$suite"; then
        printf '%s\n' "deb $ORCH_DEBIAN_MIRROR $suite main" "deb $ORCH_DEBIAN_MIRROR $suite-updates main" \
            "deb $ORCH_DEBIAN_SECURITY_MIRROR $suite-security main"
        return 0
    fi
    read -r -a pockets <<<"${UBUNTU_POCKETS:-$suite}"
    for pocket in "${pockets[@]}"; do
        mirror=$(ubuntu_pocket_mirror "$pocket" "$arch") || die "no Ubuntu archive serves $pocket for $arch"
        printf '%s\n' "deb $mirror $pocket ${UBUNTU_COMPONENTS[*]}"
    done
}

# One mmdebstrap call per suite and architecture: minbase (Essential + Priority: required)
# with apt, as debootstrap's minbase (Ubuntu's apt is Priority: important: mmdebstrap's minbase
# alone has no apt there), every pocket at creation (no upgrade pass: each package is fetched
# and unpacked once), dpkg's path excludes in effect while installing, a foreign
# architecture's maintainer scripts under qemu (binfmt, step 2), the chroot's mounts, apt
# lists and caches cleaned up by mmdebstrap itself. It replaced debootstrap (--foreign and a
# second stage under qemu for arm64, trixie's debootstrap for Ubuntu suites, then a chroot
# `apt-get upgrade`).
build_rootfs() {
    local suite=$1 arch=$2 root=$3 tmp=$3.tmp log keyring=$KEYRING excludes
    local -a sources
    log=$ORCH_HOST_LOG_DIR/mmdebstrap-$suite-$arch.log
    if [[ -d $tmp ]]; then
        say "  removing partial rootfs $tmp"
        umount_below "$tmp"
        rm -rf --one-file-system "$tmp"
    fi
    mkdir -p "$ORCH_HOST_LOG_DIR"
    # /usr merged as debootstrap merges it. Debian: mmdebstrap's merged-usr hooks install the
    # suite's usr-is-merged (left alone, apt satisfies init-system-helpers' "usrmerge |
    # usr-is-merged" with usrmerge, which pulls perl and libfile-find-rule-perl into every
    # image: +47 MB on bookworm). Ubuntu: nothing in minbase asks for either, and the hook's
    # second half fails there (universe's usr-is-merged never replaces its dummy), so the
    # links are made before anything is unpacked.
    local -a merged_usr=(--hook-dir=/usr/share/mmdebstrap/hooks/maybe-merged-usr)
    if is_ubuntu_suite "$suite"; then
        trixie_tools
        keyring=$UBUNTU_KEYRING
        local dirs="bin sbin lib"
        [[ $arch == amd64 ]] && dirs="$dirs lib64"
        # shellcheck disable=SC2016 # $1 is the hook's argument (the rootfs), expanded by mmdebstrap's sh
        merged_usr=(--setup-hook='for d in '"$dirs"'; do mkdir -p "$1/usr/$d" && ln -s "usr/$d" "$1/$d"; done')
    fi
    mapfile -t sources < <(bootstrap_sources "$suite" "$arch")
    ((${#sources[@]})) || die "no apt sources for $suite ($arch)"
    excludes=$ORCH_HOST_STATE/rootfs/dpkg-excludes.cfg
    slim_dpkg_excludes | write_if_changed "$excludes" || true
    say "  mmdebstrap $(pkg_version mmdebstrap) --variant=minbase --architectures=$arch $suite, ${#sources[@]} pockets (log: $log)"
    mmdebstrap --mode=root --variant=minbase --architectures="$arch" --keyring="$keyring" \
        --include=apt "${merged_usr[@]}" --dpkgopt="$excludes" --format=directory "$suite" "$tmp" \
        "${sources[@]}" >"$log" 2>&1 \
        || bootstrap_failed "$tmp" "$log"
    umount_below "$tmp"
    # mmdebstrap's copy of the excludes goes: write_slim_config writes the official file names
    # (the stage templates move docker-clean aside by its name)
    rm -f "$tmp/etc/dpkg/dpkg.cfg.d/99mmdebstrap"
    if is_ubuntu_suite "$suite" && [[ ! -s $tmp/usr/share/keyrings/ubuntu-archive-keyring.gpg ]]; then
        # apt in the image verifies with the same keyring (copied in case minbase lacks it)
        install -D -m 0644 "$UBUNTU_KEYRING" "$tmp/usr/share/keyrings/ubuntu-archive-keyring.gpg"
    fi
    write_slim_config "$tmp" "$suite" "$arch"
    slim_rootfs "$tmp"
    mv "$tmp" "$root"
    did "rootfs $root ($(du -sh --apparent-size "$root" | cut -f1), $(dpkg-query --admindir="$root/var/lib/dpkg" -W | wc -l) packages)"
}

bootstrap_failed() {
    tail -n 30 "$2" >&2
    umount_below "$1"
    die "mmdebstrap failed (log: $2)"
}

# hostkit base-state's removals, KIND WHAT pairs: rootfs NAME (a directory of
# ${ORCH_HOST_STATE}/rootfs, unmounted first) and image REF (a local image, if there).
remove_bases() {
    local root
    while (($# >= 2)); do
        case $1 in
            rootfs)
                [[ $2 =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] || die "hostkit base-state: not a rootfs name: '$2'"
                root=${ORCH_HOST_STATE:?}/rootfs/$2
                umount_below "$root"
                rm -rf --one-file-system "$root"
                ;;
            image) docker image rm -f "$2" >/dev/null 2>&1 || true ;;
            *) die "hostkit base-state: unknown removal '$1 $2'" ;;
        esac
        shift 2
    done
}

# One image per architecture (tag <suite>-slim-<arch>), then one OCI index <suite>-slim
# listing them: `lock` pins the index digest and every FROM resolves it per platform.
# hostkit decides (hostkit/bases.py): which architectures (base-arches: arm64 when asked for,
# or kept when an earlier run made it - never narrowed: a new index digest would invalidate
# every build cache of the suite), and, from the recipe and the suite's marker, whether to skip,
# push again, make a new index only (more architectures) or remove the rootfs and images and
# make everything again (a new recipe or other pockets) (base-state).
step_images() {
    local suite arch tag repo t0 marker srcs table plan line action recipe digest key value
    local -a arches pockets remove
    local -A wanted=()
    load_suites || exit 1
    table=$(hostkit base-arches --arm64 "${ARM64_SUITES[*]}" "${BASE_SUITES[@]}") || exit 1
    while read -r suite value; do [[ -z $suite ]] || wanted[$suite]=$value; done <<<"$table"
    for suite in "${BASE_SUITES[@]}"; do
        t0=$(now)
        repo=$(suite_repo "$suite")
        tag=$(suite_tag "$suite")
        read -r -a arches <<<"${wanted[$suite]:?hostkit base-arches named no architectures for $suite}"
        if is_ubuntu_suite "$suite"; then
            trixie_tools # its keyring also verifies Ubuntu's indices for `orchestrator outdated`
            if [[ " ${arches[*]} " == *" arm64 "* ]] && ! ubuntu_arch_mirror "$suite" arm64 >/dev/null; then
                warn "no arm64 base for $suite: neither ${ORCH_UBUNTU_MIRROR} nor ${ORCH_UBUNTU_PORTS_MIRROR} serves dists/$suite/main/binary-arm64 (noble's arm64 is on ports.ubuntu.com only)"
                arches=(amd64)
            fi
        fi
        UBUNTU_POCKETS=""
        pockets=()
        if is_ubuntu_suite "$suite"; then
            UBUNTU_POCKETS=$(ubuntu_pockets "$suite" "${arches[@]}")
            pockets=(--pockets "$UBUNTU_POCKETS") # a pocket back in sync: a new base
        fi
        marker=$ORCH_HOST_STATE/rootfs/$suite.recipe
        plan=$(hostkit base-state "$suite" --recipe-version "$BASE_RECIPE" --arches "${arches[*]}" \
            "${pockets[@]}" --marker "$marker") || exit 1
        action="" recipe="" digest="" remove=()
        while IFS= read -r line; do
            key=${line%% *} value=${line#* } # value as printed: a recipe's blanks kept
            case $key in
                action) action=$value ;;
                recipe) recipe=$value ;;
                digest) digest=$value ;;
                rootfs | image) remove+=("$key" "$value") ;;
            esac
        done <<<"$plan"
        case $action in
            skip)
                skip "${ORCH_REGISTRY}/${repo}:${tag} already in the registry ($digest)"
                continue
                ;;
            push) ;; # the marker is current, the index is not in the registry
            index | rebuild) say "  $suite base recipe changed (now $recipe): rebuilding the index" ;;
            *) die "hostkit base-state $suite answered no action: $plan" ;;
        esac
        remove_bases "${remove[@]}"
        srcs=()
        for arch in "${arches[@]}"; do
            base_image_for "$suite" "$arch"
            srcs+=("${ORCH_REGISTRY}/${repo}:${tag}-${arch}")
        done
        say "  docker buildx imagetools create -t ${ORCH_REGISTRY}/${repo}:${tag} ${srcs[*]}"
        docker buildx imagetools create -t "${ORCH_REGISTRY}/${repo}:${tag}" "${srcs[@]}" >/dev/null 2>&1 \
            || die "imagetools create ${ORCH_REGISTRY}/${repo}:${tag} failed"
        registry_has_tag "$repo" "$tag" || die "the index ${repo}:${tag} did not land in the registry"
        echo "$recipe" >"$marker"
        did "pushed ${ORCH_REGISTRY}/${repo}:${tag} ($(registry_digest "$repo" "$tag"): ${arches[*]}) - $suite took $(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')s"
    done
}

image_size() {
    docker image inspect --format '{{.Size}}' "$1" 2>/dev/null | awk '{ printf "%.1f MB", $1 / 1e6 }'
}

base_image_for() {
    local suite=$1 arch=$2 repo tag image root
    repo=$(suite_repo "$suite")
    tag=$(suite_tag "$suite")
    image=${ORCH_REGISTRY}/${repo}:${tag}-${arch}
    root=$ORCH_HOST_STATE/rootfs/$suite-$arch
    if [[ -d $root ]]; then
        skip "rootfs $root exists"
    else
        mkdir -p "$ORCH_HOST_STATE/rootfs"
        build_rootfs "$suite" "$arch" "$root"
    fi
    say "  docker import --platform linux/$arch $image"
    tar -C "$root" --numeric-owner --one-file-system --xattrs \
        --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' -cf - . |
        docker import --platform "linux/$arch" --change 'CMD ["bash"]' \
            --message "mmdebstrap --variant=minbase $suite ($arch), slimmed (provision-host.sh)" \
            - "$image" >/dev/null
    did "imported $image ($(image_size "$image"))"
    docker push -q "$image" >/dev/null
    registry_has_tag "$repo" "${tag}-${arch}" || die "push of $image did not land in the registry"
}

# ----------------------------------------------------------------- 7 mirror
# hostkit: the CPython releases tests/e2e/images.yaml pins, from Debian source packages
# (hashes from the signed Sources index, sha256 against pyenv's pins, gpg --verify offline),
# keys/<fingerprint>.asc, SHA256SUMS.
step_mirror() {
    trixie_tools # Ubuntu's archive keyring: resolute's Sources index lists CPython 3.14's tarball
    hostkit mirror
    "$HOST_SERVICES" start mirror
    hostkit served
    build_test_ppa
    local url=http://127.0.0.1:${ORCH_MIRROR_PORT}/ppa/deadsnakes/ppa/ubuntu/dists/${PPA_SUITE}/InRelease
    curl -fsS -o /dev/null "$url" || die "$url not served"
    ok "test PPA answers at $url"
    hostkit sums # with the PPA's files
}

# ------------------------------------------------------------------ 8 pyenv
step_pyenv() { hostkit pyenv; }

# ------------------------------------------------------------------ 9 smoke
step_smoke() {
    local ctx
    ctx=$(mktempdir)
    cat >"$ctx/Dockerfile" <<EOF
FROM ${ORCH_REGISTRY}/debian:bookworm-slim
SHELL ["/bin/bash", "-c"]
# --network host: RUN steps reach the loopback mirror.
RUN exec 3<>/dev/tcp/127.0.0.1/${ORCH_MIRROR_PORT} \\
 && printf 'HEAD /ftp/python/ HTTP/1.0\\r\\n\\r\\n' >&3 \\
 && head -n1 <&3 | grep -q ' 200 ' \\
 && test -f /etc/apt/apt.conf.d/docker-autoremove-suggests \\
 && test ! -e /usr/share/man/man1 \\
 && echo smoke-ok
EOF
    say "  docker buildx build --network host --no-cache (FROM ${ORCH_REGISTRY}/debian:bookworm-slim)"
    if ! docker buildx build --progress=plain --network host --no-cache --pull \
        --output type=cacheonly "$ctx" >"$ORCH_HOST_LOG_DIR/smoke-build.log" 2>&1; then
        tail -n 30 "$ORCH_HOST_LOG_DIR/smoke-build.log" >&2
        die "smoke build failed"
    fi
    grep -q smoke-ok "$ORCH_HOST_LOG_DIR/smoke-build.log" || die "smoke build did not print smoke-ok"
    ok "BuildKit build with --network host reached http://127.0.0.1:${ORCH_MIRROR_PORT}/ftp/python/"
    # --network host, as the builds (orchestrator build's default network): this check is about
    # emulation, not dockerd's default bridge (step dockerd checks that one).
    # shellcheck disable=SC2016 # $(uname -m) runs in the arm64 build, not here
    printf 'FROM %s/debian:bookworm-slim\nRUN [ "$(uname -m)" = aarch64 ] && dpkg --print-architecture\n' \
        "$ORCH_REGISTRY" >"$ctx/Dockerfile"
    say "  docker buildx build --network host --platform linux/arm64 --no-cache (RUN under qemu)"
    if ! docker buildx build --progress=plain --network host --platform linux/arm64 --no-cache \
        --output type=cacheonly "$ctx" >"$ORCH_HOST_LOG_DIR/smoke-build-arm64.log" 2>&1; then
        tail -n 30 "$ORCH_HOST_LOG_DIR/smoke-build-arm64.log" >&2
        die "arm64 smoke build (RUN under qemu) failed"
    fi
    ok "linux/arm64 RUN under emulation: uname -m = aarch64, dpkg arch $(grep -o 'arm64$' "$ORCH_HOST_LOG_DIR/smoke-build-arm64.log" | tail -n1)"
}

# ----------------------------------------------------------------- 10 cosign
# Debian 12 has no cosign; trixie's (a static Go binary, no dependencies beyond libc) installs
# like the docker .debs of step 3.
step_cosign() {
    local dir=$ORCH_HOST_STATE/apt-trixie deb
    if debs_at "cosign=$WANT_COSIGN"; then
        skip "cosign $(pkg_version cosign) installed (trixie)"
        return 0
    fi
    trixie_apt_init "$dir"
    rm -f "$dir"/download/*.deb
    say "  apt-get download cosign (trixie)"
    (cd "$dir/download" && private_apt "$dir" download cosign)
    deb=$(compgen -G "$dir/download/cosign_*.deb") || die "apt-get download did not fetch cosign"
    say "    $(dpkg-deb -f "$deb" Package Version | paste -sd' ')  deps: $(dpkg-deb -f "$deb" Depends)"
    dpkg -i "$deb" </dev/null || die "dpkg -i ${deb##*/} failed (see above); not forcing dependencies"
    debs_at "cosign=$WANT_COSIGN" || die "cosign is $(pkg_version cosign), not ${WANT_COSIGN}.x"
    did "installed cosign $(pkg_version cosign)"
}

# --------------------------------------------------------------- 11 go tools
# The SBOM generator the push runs and the scanner its gate runs: the syft and grype
# tools/go-tools.txt pins, built with `go install` by install-go-tools.sh (it says "skip" when
# the binary there was built from the pin) where the orchestrator looks for them
# (ORCH_TOOLS_DIR, else ${ORCH_HOST_STATE}/tools). grype after syft: about 70 s more, as they
# share most of Go's module and build caches.
step_go_tools() {
    local go=${GO:-go}
    if ! command -v "$go" >/dev/null && [[ -x /usr/local/go/bin/go ]]; then
        go=/usr/local/go/bin/go # Go's own tarball layout, not always on root's PATH
    fi
    GO=$go bash "$SCRIPT_DIR/install-go-tools.sh" syft grype ||
        die "scripts/install-go-tools.sh syft grype failed (see above)"
    ok "$("$ORCH_TOOLS_DIR/bin/syft" version | awk '$1 == "Version:" { print "syft", $2 }') at $ORCH_TOOLS_DIR/bin/syft"
    ok "$("$ORCH_TOOLS_DIR/bin/grype" version | awk '$1 == "Version:" { print "grype", $2 }') at $ORCH_TOOLS_DIR/bin/grype"
}

# ---------------------------------------------------------------- summary
summary() {
    local suite images=()
    if load_suites; then
        for suite in "${BASE_SUITES[@]}"; do images+=("$(suite_repo "$suite"):$(suite_tag "$suite")"); done
    fi
    hostkit summary "${images[@]}" || warn "the summary failed (see above)"
    "$HOST_SERVICES" status || true
    if ((${#STEP_ORDER[@]})); then
        local s line=""
        for s in "${STEP_ORDER[@]}"; do line+="${s}=${STEP_TIME[$s]:-?}s "; done
        say "step timings  : $line"
    fi
}

# ------------------------------------------------------------------- main
main() {
    [[ $(id -u) == 0 ]] || die "must run as root"
    [[ -r /etc/debian_version ]] || die "not a Debian system"
    # hostkit (python -m hostkit) decides for steps 3, 4, 6 and 10: without the venv `make
    # install` makes, step 3 would read "not installed" and reinstall before failing
    [[ -x $HOSTKIT_PYTHON ]] || die "$HOSTKIT_PYTHON is missing: run \`make install\` first (or set ORCH_HOSTKIT_PYTHON)"
    local all=(packages qemu buildkit dockerd registry images mirror pyenv smoke cosign go_tools) steps=() s n
    for s in "$@"; do
        case $s in
            [1-9] | 1[01]) steps+=("${all[s - 1]}") ;;
            packages | qemu | buildkit | dockerd | registry | images | mirror | pyenv | smoke | cosign | go_tools) steps+=("$s") ;;
            syft | grype) steps+=(go_tools) ;; # step 11's name before grype joined it
            -h | --help)
                sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
                exit 0
                ;;
            *) die "unknown step '$s' (expected 1-11 or ${all[*]})" ;;
        esac
    done
    ((${#steps[@]})) || steps=("${all[@]}")
    local t0
    t0=$(now)
    n=0
    for s in "${all[@]}"; do
        n=$((n + 1))
        [[ " ${steps[*]} " == *" $s "* ]] || continue
        step_begin "$n-$s"
        "step_$s"
        step_end "$n-$s"
    done
    summary
    say "total $(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')s"
}

# sourced (tests/unit/test_provision_bases.py): the functions only
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then main "$@"; fi
