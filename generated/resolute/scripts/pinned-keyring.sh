#!/bin/sh
# A keyring holding exactly the pinned key(s) of a downloaded key file, and nothing else.
#   sh pinned-keyring.sh KEYFILE URL OUT FINGERPRINT...
# The file is imported into a temporary GNUPGHOME and OUT is `gpg --export FINGERPRINT...`
# from there (a binary keyring, as apt's signed-by and gpgv --keyring read it): any other key
# the file holds is left behind. A FINGERPRINT is a primary key's or a subkey's (a signing
# subkey, as verify-signature.sh takes it): a subkey pin exports the primary key that carries
# it. The export is listed again and must show exactly the primary keys the pins name. A
# pinned key that is missing, expired or revoked (a subkey: or its primary) fails with one
# line naming the fingerprint and URL. (orchestrator/apt/keyrings.py is the same rule outside a
# build.)
set -eu
if [ "$#" -lt 4 ]; then
    echo "usage: pinned-keyring.sh KEYFILE URL OUT FINGERPRINT..." >&2
    exit 2
fi
keyfile=$1 url=$2 out=$3
shift 3

fail() {
    echo "pinned-keyring.sh: $*" >&2
    exit 1
}

# gpg's errors are not shown below (they are judged by what arrives): a missing gpg must not
# read as a key file without the pinned key
command -v gpg >/dev/null 2>&1 || fail "gpg not found on PATH; fix: install gnupg in this stage (apt-get install gnupg)"

GNUPGHOME=$(mktemp -d)
export GNUPGHOME
cleanup() {
    gpgconf --kill all >/dev/null 2>&1 || true
    rm -rf "$GNUPGHOME"
}
trap cleanup EXIT

# primary fingerprint and validity of each primary key a --with-colons listing shows
primaries() {
    awk -F: '$1 == "pub" { v = $2; p = 1; next }
             $1 == "fpr" && p { print $10, v; p = 0; next }
             { p = 0 }'
}

# "fingerprint primary validity" of each primary key and subkey a --with-colons listing shows;
# a subkey takes its primary's validity when that one is unusable (gpg_status.pinnable_keys)
pinnable() {
    awk -F: '$1 == "pub" { rec = "pub"; v = $2; primary = ""; next }
             $1 == "sub" { rec = "sub"; v = $2; next }
             $1 == "fpr" && rec == "pub" { primary = $10; pv = v; print $10, $10, v }
             $1 == "fpr" && rec == "sub" && primary != "" {
                 print $10, primary, (pv ~ /^[erid]$/ ? pv : v)
             }
             { rec = "" }'
}

# what arrives is judged below, not gpg's exit code (a file may hold keys gpg skips)
gpg --batch --quiet --import "$keyfile" >/dev/null 2>&1 || true
listed=$(gpg --batch --with-colons --with-subkey-fingerprint --list-keys 2>/dev/null | pinnable)
holds=$(printf '%s\n' "$listed" | awk '$1 == $2 { printf "%s%s", sep, $1; sep = ", " }')
wanted=""
for fpr in "$@"; do
    found=$(printf '%s\n' "$listed" | awk -v want="$fpr" 'toupper(want) == $1 { print $2, $3; exit }')
    [ -n "$found" ] || fail "the key file $url does not hold the pinned key $fpr (it holds ${holds:-no key}); fix: correct the pinned fingerprint or the key's URL"
    primary=${found%% *} validity=${found#* }
    key="the pinned key $fpr"
    [ "$primary" = "$(printf '%s' "$fpr" | tr 'a-f' 'A-F')" ] || key="$key (a subkey of $primary)"
    case $validity in
        e) fail "$key from $url has expired; fix: pin the key its owner signs with now (or a refreshed copy of it)" ;;
        r) fail "$key from $url has been revoked; fix: pin the key its owner signs with now" ;;
        i | d) fail "$key from $url is not usable (validity $validity); fix: pin a usable key" ;;
    esac
    wanted="$wanted$primary
"
done

gpg --batch --yes --output "$out.part" --export "$@"
got=$(gpg --batch --with-colons --show-keys "$out.part" 2>/dev/null | primaries | awk '{ print $1 }' | sort)
want=$(printf '%s' "$wanted" | sort -u)
if [ "$got" != "$want" ]; then
    rm -f "$out.part"
    fail "the keyring exported from $url holds $(echo "$got" | tr '\n' ' ')instead of exactly $(echo "$want" | tr '\n' ' ' | sed 's/ $//')"
fi
mv "$out.part" "$out"
