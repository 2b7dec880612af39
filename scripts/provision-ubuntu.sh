# shellcheck shell=bash
# provision-ubuntu.sh - the Ubuntu parts of provision-host.sh (sourced by it; uses its helpers):
#   * trixie's ubuntu-keyring, unpacked (never installed) into ${ORCH_HOST_STATE}/trixie-tools:
#     Debian 12's ubuntu-keyring is older than noble/resolute's signing keys;
#   * the apt sources of the Ubuntu base rootfs (noble, resolute: mmdebstrap in
#     provision-host.sh) from Ubuntu's archive over plain HTTP, verified with that keyring;
#   * a deadsnakes-shaped PPA on the mirror (dists/<suite>/main/binary-amd64, signed InRelease,
#     pool/), holding Ubuntu's own python3.X packages re-versioned like the PPA's, signed with the
#     test-only key tests/e2e/ppa/signing-key.secret.asc.
# arm64, checked per suite (ubuntu_arch_mirror): noble's arm64 is only on ports.ubuntu.com,
# which does not resolve on this kind of machine (`curl: (6) Could not resolve host:
# ports.ubuntu.com`; archive.ubuntu.com's dists/noble/main/binary-arm64/Release: 404), but
# resolute's is on the main archive (dists/resolute/main/binary-arm64/Release: 200). A suite
# gets an arm64 base from whichever archive serves its binary-arm64 index, else none.

ORCH_UBUNTU_MIRROR=${ORCH_UBUNTU_MIRROR:-http://archive.ubuntu.com/ubuntu}
ORCH_UBUNTU_SECURITY_MIRROR=${ORCH_UBUNTU_SECURITY_MIRROR:-http://security.ubuntu.com/ubuntu}
ORCH_UBUNTU_PORTS_MIRROR=${ORCH_UBUNTU_PORTS_MIRROR:-http://ports.ubuntu.com/ubuntu-ports}
export ORCH_UBUNTU_MIRROR ORCH_UBUNTU_SECURITY_MIRROR ORCH_UBUNTU_PORTS_MIRROR
UBUNTU_COMPONENTS=(main universe)
TRIXIE_TOOLS=${ORCH_HOST_STATE}/trixie-tools
TRIXIE_TOOL_DEBS=(ubuntu-keyring)
UBUNTU_KEYRING=${TRIXIE_TOOLS}/root/usr/share/keyrings/ubuntu-archive-keyring.gpg

# The test PPA: which suite carries which minor (each its own system Python: what the real
# PPA rebuilds for other releases; see tests/e2e/images.yaml).
PPA_SUITE=noble
PPA_MINOR=3.12
PPA_PACKAGES=(python3.12 python3.12-minimal python3.12-venv python3.12-dev libpython3.12-minimal
    libpython3.12-stdlib libpython3.12t64 libpython3.12-dev)
PPA_VERSION_SUFFIX=+deadsnakes.e2e1 # the PPA's own builds carry a suffix too (e.g. -1+noble1)
PPA_RECIPE=1
PPA_KEY=${SCRIPT_DIR}/../tests/e2e/ppa/signing-key.secret.asc

# The archive that serves $suite's binary-$arch index: the main archive, else ports (prints
# nothing and fails when neither does). $3: the security archive instead of the main one.
ubuntu_arch_mirror() {
    local suite=$1 arch=$2 main=${3:-$ORCH_UBUNTU_MIRROR} m
    for m in "$main" "$ORCH_UBUNTU_PORTS_MIRROR"; do
        if curl -fsS -m 15 -o /dev/null "$m/dists/$suite/main/binary-$arch/Release" 2>/dev/null; then
            echo "$m"
            return 0
        fi
    done
    return 1
}

trixie_apt_init() {
    local dir=$1
    private_apt_init "$dir"
    write_if_changed "$dir/sources.list" <<EOF || true
# Debian 13 (trixie), used only by provision-host.sh to fetch .debs.
deb [signed-by=${KEYRING}] ${ORCH_DEBIAN_MIRROR} trixie main
deb [signed-by=${KEYRING}] ${ORCH_DEBIAN_MIRROR} trixie-updates main
deb [signed-by=${KEYRING}] ${ORCH_DEBIAN_SECURITY_MIRROR} trixie-security main
EOF
    if private_apt_stale "$dir" 86400; then
        say "  apt-get update (private trixie lists in $dir)"
        private_apt "$dir" update -qq
    fi
}

# trixie's ubuntu-keyring, unpacked with dpkg-deb -x (not installed).
trixie_tools() {
    local dir=$ORCH_HOST_STATE/apt-trixie p
    if [[ -s $UBUNTU_KEYRING ]]; then
        host_ubuntu_keyring
        return 0
    fi
    trixie_apt_init "$dir"
    rm -rf "$TRIXIE_TOOLS"
    mkdir -p "$TRIXIE_TOOLS/root"
    rm -f "$dir"/download/*.deb
    say "  apt-get download ${TRIXIE_TOOL_DEBS[*]} (trixie), unpacked into $TRIXIE_TOOLS"
    (cd "$dir/download" && private_apt "$dir" download "${TRIXIE_TOOL_DEBS[@]}")
    for p in "${TRIXIE_TOOL_DEBS[@]}"; do
        p=$(compgen -G "$dir/download/${p}_*.deb") || die "apt-get download did not fetch $p"
        dpkg-deb -x "$p" "$TRIXIE_TOOLS/root"
        say "    $(dpkg-deb -f "$p" Package Version | paste -sd' ')"
    done
    [[ -s $UBUNTU_KEYRING ]] || die "ubuntu-keyring did not provide $UBUNTU_KEYRING"
    host_ubuntu_keyring
}

# `orchestrator outdated` verifies Ubuntu's InRelease files with this keyring (it looks in
# sources.apt_keyrings: /usr/share/keyrings, /usr/local/share/keyrings). Debian 12's own
# ubuntu-keyring package is older; this is trixie's, outside dpkg's files.
host_ubuntu_keyring() {
    install -D -m 0644 "$UBUNTU_KEYRING" /usr/local/share/keyrings/ubuntu-archive-keyring.gpg
}

# The archive serving $pocket for $arch: the security archive for -security, amd64 from the
# main archive, another architecture from whichever archive serves its index.

# The archive that serves $pocket (resolute, resolute-updates, resolute-security) for $arch.
ubuntu_pocket_mirror() {
    local pocket=$1 arch=$2 main=$ORCH_UBUNTU_MIRROR
    [[ $pocket == *-security ]] && main=$ORCH_UBUNTU_SECURITY_MIRROR
    if [[ $arch == amd64 ]]; then echo "$main"; else ubuntu_arch_mirror "$pocket" "$arch" "$main"; fi
}

# Whether $pocket's binary-$arch Packages.xz (every component) is the file its InRelease lists
# (sha256). Checked 2026-12-07: through this machine's archive proxy, resolute-updates' and
# resolute-security's arm64 indices are not (apt: "File has unexpected size (837220 !=
# 998908). Mirror sync in progress?"; by-hash/SHA256/<hash>: 404), while their amd64 indices
# and the resolute pocket's arm64 ones are. apt would refuse them in every build.
ubuntu_pocket_consistent() {
    local pocket=$1 arch=$2 base comp want got release
    base=$(ubuntu_pocket_mirror "$pocket" "$arch") || return 1
    release=$(curl -fsS -m 60 "$base/dists/$pocket/InRelease") || return 1
    for comp in "${UBUNTU_COMPONENTS[@]}"; do
        want=$(awk -v f="$comp/binary-$arch/Packages.xz" \
            '/^SHA256:/ { s = 1; next } /^[^ ]/ { s = 0 } s && $3 == f { print $1 }' <<<"$release")
        got=$(curl -fsS -m 300 "$base/dists/$pocket/$comp/binary-$arch/Packages.xz" | sha256sum) || return 1
        [[ -n $want && ${got%% *} == "$want" ]] || return 1
    done
}

# The pockets a suite's bases list (for every architecture built: a cross compile installs the
# same -dev package versions for both): the release always; -updates and -security when their
# indices are consistent for every architecture, else left out with a warning (the suite's
# images then get no Ubuntu updates here: `orchestrator outdated` reads the sources they list).
ubuntu_pockets() {
    local suite=$1 pocket arch ok pockets=("$1")
    shift
    for pocket in "$suite-updates" "$suite-security"; do
        ok=1
        for arch in "$@"; do
            if ! ubuntu_pocket_consistent "$pocket" "$arch"; then
                warn "$pocket: its binary-$arch indices do not match its signed InRelease through this machine's archive proxy (stale copies): the $suite bases leave $pocket out"
                ok=0
                break
            fi
        done
        if ((ok)); then pockets+=("$pocket"); fi
    done
    echo "${pockets[*]}"
}

# deb822 sources like the official ubuntu:* images (main + universe, -updates, -security), with
# the pockets UBUNTU_POCKETS names (step_images: ubuntu_pockets).
write_ubuntu_sources() {
    local root=$1 suite=$2 arch=$3 uri sec main=() pocket
    local -a pockets
    read -r -a pockets <<<"${UBUNTU_POCKETS:-$suite $suite-updates $suite-security}"
    uri=$(ubuntu_pocket_mirror "$suite" "$arch") || die "no Ubuntu archive serves $suite for $arch"
    sec=$(ubuntu_pocket_mirror "$suite-security" "$arch") || sec=""
    for pocket in "${pockets[@]}"; do [[ $pocket == *-security ]] || main+=("$pocket"); done
    rm -f "$root/etc/apt/sources.list"
    cat >"$root/etc/apt/sources.list.d/ubuntu.sources" <<EOF
Types: deb
URIs: ${uri}/
Suites: ${main[*]}
Components: ${UBUNTU_COMPONENTS[*]}
Signed-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg
EOF
    if [[ " ${pockets[*]} " == *" $suite-security "* && -n $sec ]]; then
        cat >>"$root/etc/apt/sources.list.d/ubuntu.sources" <<EOF

Types: deb
URIs: ${sec}/
Suites: ${suite}-security
Components: ${UBUNTU_COMPONENTS[*]}
Signed-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg
EOF
    fi
}

# ------------------------------------------------------------ the test PPA
# ${ORCH_MIRROR_DIR}/ppa/deadsnakes/ppa/ubuntu laid out like ppa.launchpadcontent.net, and the
# key at ${ORCH_MIRROR_DIR}/ppa-keys/<FPR>.asc (tests/e2e/images.yaml pins the fingerprint).
build_test_ppa() {
    local root=$ORCH_MIRROR_DIR/ppa/deadsnakes/ppa/ubuntu dir=$ORCH_HOST_STATE/apt-ubuntu
    local marker fpr gh work p deb ver new pool
    [[ -r $PPA_KEY ]] || die "test PPA key $PPA_KEY is missing"
    gh=$(mktempdir)/gnupg
    mkdir -m 0700 "$gh"
    gpg --homedir "$gh" --batch --quiet --import "$PPA_KEY" 2>/dev/null || die "cannot import $PPA_KEY"
    fpr=$(gpg --homedir "$gh" --batch --with-colons --list-secret-keys | awk -F: '/^fpr/ { print $10; exit }')
    trixie_tools
    private_apt_init "$dir"
    write_if_changed "$dir/sources.list" <<EOF || true
# Ubuntu ${PPA_SUITE}, used only by provision-host.sh to fetch the python${PPA_MINOR} .debs
# that the test PPA re-publishes.
deb [signed-by=${UBUNTU_KEYRING}] ${ORCH_UBUNTU_MIRROR} ${PPA_SUITE} ${PPA_SUITE}-updates main universe
deb [signed-by=${UBUNTU_KEYRING}] ${ORCH_UBUNTU_SECURITY_MIRROR} ${PPA_SUITE}-security main universe
EOF
    # an hour at most: the images' own apt-get update sees Ubuntu's newest python$PPA_MINOR
    if private_apt_stale "$dir" 3600; then
        say "  apt-get update (private Ubuntu $PPA_SUITE lists in $dir)"
        private_apt "$dir" update -qq
    fi
    # Ubuntu's current python$PPA_MINOR is part of the recipe: once Ubuntu publishes a newer
    # one (noble-security/-updates), a PPA re-versioned from the older one would lose to it in
    # the image's apt, so the PPA is rebuilt from the newer.
    ver=$(APT_TOOL=apt-cache private_apt "$dir" policy "python$PPA_MINOR" | awk '/Candidate:/ { print $2 }')
    [[ -n $ver && $ver != "(none)" ]] || die "no python$PPA_MINOR in Ubuntu $PPA_SUITE (private lists in $dir)"
    marker="$PPA_RECIPE $fpr $PPA_SUITE $PPA_MINOR $ver ${PPA_PACKAGES[*]}"
    if [[ "$(cat "$root/.recipe" 2>/dev/null)" == "$marker" ]]; then
        skip "test PPA $root ($PPA_SUITE: python$PPA_MINOR $ver$PPA_VERSION_SUFFIX, key $fpr)"
        return 0
    fi
    rm -f "$dir"/download/*.deb
    say "  apt-get download ${PPA_PACKAGES[*]} ($PPA_SUITE)"
    (cd "$dir/download" && private_apt "$dir" download "${PPA_PACKAGES[@]}")
    rm -rf "$root.tmp"
    pool=$root.tmp/pool/main/p/python$PPA_MINOR
    mkdir -p "$pool" "$root.tmp/dists/$PPA_SUITE/main/binary-amd64"
    work=$(mktempdir)
    for p in "${PPA_PACKAGES[@]}"; do
        deb=$(compgen -G "$dir/download/${p}_*_*.deb") || die "apt-get download did not fetch $p"
        ver=$(dpkg-deb -f "$deb" Version)
        new=$ver$PPA_VERSION_SUFFIX
        rm -rf "$work/pkg"
        dpkg-deb -R "$deb" "$work/pkg"
        # the version, and every exact dependency on the same source's packages
        sed -i -e "s/^Version: .*/Version: ${new}/" -e "s/(= ${ver//./\\.})/(= ${new})/g" \
            "$work/pkg/DEBIAN/control"
        dpkg-deb --build -Zxz "$work/pkg" "$pool/${p}_${new}_$(dpkg-deb -f "$deb" Architecture).deb" >/dev/null
    done
    (
        cd "$root.tmp" || exit 1
        apt-ftparchive packages pool >"dists/$PPA_SUITE/main/binary-amd64/Packages"
        gzip -9n -k "dists/$PPA_SUITE/main/binary-amd64/Packages"
        apt-ftparchive \
            -o APT::FTPArchive::Release::Origin="LP-PPA-deadsnakes-e2e" \
            -o APT::FTPArchive::Release::Label="deadsnakes (test copy)" \
            -o APT::FTPArchive::Release::Suite="$PPA_SUITE" \
            -o APT::FTPArchive::Release::Codename="$PPA_SUITE" \
            -o APT::FTPArchive::Release::Architectures="amd64" \
            -o APT::FTPArchive::Release::Components="main" \
            release "dists/$PPA_SUITE" >"$work/Release"
        mv "$work/Release" "dists/$PPA_SUITE/Release"
        gpg --homedir "$gh" --batch --yes --local-user "$fpr" --clearsign \
            -o "dists/$PPA_SUITE/InRelease" "dists/$PPA_SUITE/Release"
        gpg --homedir "$gh" --batch --yes --local-user "$fpr" --armor --detach-sign \
            -o "dists/$PPA_SUITE/Release.gpg" "dists/$PPA_SUITE/Release"
    )
    echo "$marker" >"$root.tmp/.recipe"
    rm -rf "$root"
    mv "$root.tmp" "$root"
    mkdir -p "$ORCH_MIRROR_DIR/ppa-keys"
    gpg --homedir "$gh" --batch --armor --export "$fpr" >"$ORCH_MIRROR_DIR/ppa-keys/$fpr.asc"
    did "test PPA $root: $(find "$root/pool" -name '*.deb' | wc -l) packages for $PPA_SUITE (python$PPA_MINOR $new), InRelease signed by $fpr"
}
