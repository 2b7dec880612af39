#!/bin/sh
# A keyring holding exactly the pinned key(s) of a downloaded key file, and nothing else.
#   sh pinned-keyring.sh KEYFILE URL OUT FINGERPRINT...
# The file is imported into a temporary GNUPGHOME and OUT is `gpg --export FINGERPRINT...`
# from there (a binary keyring, as apt's signed-by and gpgv --keyring read it): any other key
# the file holds is left behind. The export is listed again and must show exactly the pinned
# primary keys. A pinned key that is missing, expired or revoked fails with one line naming
# the fingerprint and URL. (orchestrator/keyrings.py is the same rule outside a build.)
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

GNUPGHOME=$(mktemp -d)
export GNUPGHOME
cleanup() {
    gpgconf --kill all >/dev/null 2>&1 || true
    rm -rf "$GNUPGHOME"
}
trap cleanup EXIT

# primary fingerprint and validity of each key a --with-colons listing shows, one per line
primaries() {
    awk -F: '$1 == "pub" { v = $2; p = 1; next }
             $1 == "fpr" && p { print $10, v; p = 0; next }
             { p = 0 }'
}

# what arrives is judged below, not gpg's exit code (a file may hold keys gpg skips)
gpg --batch --quiet --import "$keyfile" >/dev/null 2>&1 || true
listed=$(gpg --batch --with-colons --list-keys 2>/dev/null | primaries)
for fpr in "$@"; do
    validity=$(printf '%s\n' "$listed" | awk -v want="$fpr" '$1 == want { print $2; exit }')
    holds=$(printf '%s\n' "$listed" | awk 'NF { printf "%s%s", sep, $1; sep = ", " }')
    case $validity in
        "") fail "the key file $url does not hold the pinned key $fpr (it holds ${holds:-no key}); fix: correct the pinned fingerprint or the key's URL" ;;
        e) fail "the pinned key $fpr from $url has expired; fix: pin the key its owner signs with now (or a refreshed copy of it)" ;;
        r) fail "the pinned key $fpr from $url has been revoked; fix: pin the key its owner signs with now" ;;
        i | d) fail "the pinned key $fpr from $url is not usable (validity $validity); fix: pin a usable key" ;;
    esac
done

gpg --batch --yes --output "$out.part" --export "$@"
got=$(gpg --batch --with-colons --show-keys "$out.part" 2>/dev/null | primaries | awk '{ print $1 }' | sort)
want=$(printf '%s\n' "$@" | sort -u)
if [ "$got" != "$want" ]; then
    rm -f "$out.part"
    fail "the keyring exported from $url holds $(echo "$got" | tr '\n' ' ')instead of exactly $*"
fi
mv "$out.part" "$out"
