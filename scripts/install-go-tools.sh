#!/usr/bin/env bash
# install-go-tools.sh - build the Go tools pinned in tools/go-tools.txt (grype, syft) with
# `go install MODULE@VERSION` into a cache the project owns, once per machine:
#
#   ${ORCH_TOOLS_DIR}/NAME-VERSION/NAME   the binary of that pin
#   ${ORCH_TOOLS_DIR}/bin/NAME            a symlink to the pinned one (what the orchestrator runs)
#
# Idempotent: a tool whose binary is there and was built from the pinned module version
# (`go version -m` reads it from the binary) is skipped; anything else there is rebuilt.
# The build runs under `nice -n 19` (it takes both cores for minutes when the Go build cache
# is cold). Needs Go (1.26 here) and the Go module proxy.
#
# Usage: install-go-tools.sh [NAME ...]   (default: every tool in tools/go-tools.txt)
#
# Environment:
#   ORCH_TOOLS_DIR   where the tools go      default ${ORCH_HOST_STATE:-/var/lib/orchestrator-host}/tools
#   GO               the go command          default go
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PINS=${SCRIPT_DIR}/../tools/go-tools.txt
ORCH_TOOLS_DIR=${ORCH_TOOLS_DIR:-${ORCH_HOST_STATE:-/var/lib/orchestrator-host}/tools}
GO=${GO:-go}

say() { printf '[go-tools] %s\n' "$*"; }
die() {
    printf '[go-tools] ERROR: %s\n' "$*" >&2
    exit 1
}

# The module path and version the binary was built from: "MODULE VERSION" (empty if not Go).
built_from() {
    local info
    info=$("$GO" version -m "$1" 2>/dev/null) || return 0
    awk '$1 == "mod" { print $2, $3; exit }' <<<"$info"
}

# The module of a command path: github.com/anchore/grype/cmd/grype -> github.com/anchore/grype
# (as `go version -m` names it: the path up to the command's directory).
module_of() {
    local pkg=$1
    printf '%s\n' "${pkg%/cmd/*}"
}

install_one() {
    local name=$1 pkg=$2 version=$3
    local dest=${ORCH_TOOLS_DIR}/${name}-${version}
    local bin=${dest}/${name} want have
    want="$(module_of "$pkg") ${version}"
    if [[ -x $bin ]]; then
        have=$(built_from "$bin")
        if [[ $have == "$want" ]]; then
            say "skip: ${name} ${version} is there (${bin})"
            link "$name" "$version"
            return 0
        fi
        say "${bin} was built from '${have:-unknown}', not '${want}': rebuilding"
    fi
    local tmp start took
    mkdir -p "$ORCH_TOOLS_DIR"
    tmp=$(mktemp -d "${ORCH_TOOLS_DIR}/.build-${name}.XXXXXX")
    say "go install ${pkg}@${version} (nice -n 19)"
    start=$(date +%s)
    # main.version: what `NAME version` prints (grype and syft leave it "[not provided]"
    # otherwise; their release builds set it the same way, without the "v")
    if ! GOBIN=$tmp nice -n 19 "$GO" install -ldflags "-X main.version=${version#v}" "${pkg}@${version}"; then
        rm -rf "$tmp"
        die "go install ${pkg}@${version} failed (is the Go module proxy reachable? GOPROXY=$("$GO" env GOPROXY))"
    fi
    took=$(($(date +%s) - start))
    [[ -x $tmp/$name ]] || die "go install ${pkg}@${version} wrote no ${name} into ${tmp}"
    have=$(built_from "$tmp/$name")
    [[ $have == "$want" ]] || die "${tmp}/${name} says it was built from '${have}', not '${want}'"
    chmod 755 "$tmp" # mktemp's 0700 would hide the tool from users other than the builder
    rm -rf "$dest"
    mv "$tmp" "$dest"
    say "built ${name} ${version} in ${took}s: ${bin}"
    link "$name" "$version"
}

link() {
    local name=$1 version=$2
    mkdir -p "${ORCH_TOOLS_DIR}/bin"
    ln -sfn "../${name}-${version}/${name}" "${ORCH_TOOLS_DIR}/bin/${name}.new"
    mv -T "${ORCH_TOOLS_DIR}/bin/${name}.new" "${ORCH_TOOLS_DIR}/bin/${name}"
}

main() {
    [[ -r $PINS ]] || die "${PINS}: missing"
    command -v "$GO" >/dev/null || die "no ${GO} on PATH: install Go (1.26) first"
    local -a names=() pkgs=() versions=()
    local name pkg version rest
    while read -r name pkg version rest; do
        [[ -z $name || $name == \#* ]] && continue
        [[ -n $version && -z $rest ]] || die "${PINS}: bad line '${name} ${pkg} ${version} ${rest}' (want: NAME MODULE/cmd/NAME vX.Y.Z)"
        [[ $version =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "${PINS}: ${name}: version '${version}' is not vX.Y.Z"
        names+=("$name") pkgs+=("$pkg") versions+=("$version")
    done <"$PINS"
    local -a want=("$@")
    local i found
    ((${#want[@]})) || want=("${names[@]}")
    for name in "${want[@]}"; do
        found=0
        for i in "${!names[@]}"; do
            if [[ ${names[$i]} == "$name" ]]; then
                install_one "$name" "${pkgs[$i]}" "${versions[$i]}"
                found=1
            fi
        done
        ((found)) || die "${name}: not in ${PINS} (it has: ${names[*]})"
    done
}

main "$@"
