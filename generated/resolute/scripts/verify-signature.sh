#!/bin/sh
# An OpenPGP signature judged as apt judges it, not by gpgv's exit code (gpgv exits 0 for a
# signature by an expired or revoked key).
#   sh verify-signature.sh KEYRING FINGERPRINT WHAT SIGNATURE DATA
# KEYRING: a keyring of the pinned key only (pinned-keyring.sh); FINGERPRINT: the key a good
# signature must be by (its primary or signing fingerprint); WHAT: what is checked, for the
# error (a URL); SIGNATURE: a detached signature of DATA. DATA is required: without it gpgv
# would take any clearsigned or inline-signed message by the pinned key as good (gpgv itself
# refuses such a message as SIGNATURE when DATA is given).
# Accepted only with a GOODSIG and its VALIDSIG by FINGERPRINT, and no EXPKEYSIG, REVKEYSIG,
# EXPSIG, BADSIG or ERRSIG on any signature, no MD5/SHA1/RIPEMD160 digest; else one line
# naming WHAT, the fingerprint and the status that refused it. A second signature by a key
# the keyring does not have (NO_PUBKEY, and the ERRSIG it explains) is ignored beside a good
# pinned one, as apt and sqv do (a file signed with the next key too, before keyrings carry
# it); without a good pinned signature it is the refusal.
# (orchestrator/apt/gpg_status.py is the same rule outside a build.)
set -eu
if [ "$#" -ne 5 ]; then
    echo "usage: verify-signature.sh KEYRING FINGERPRINT WHAT SIGNATURE DATA" >&2
    exit 2
fi
keyring=$1 fpr=$2 what=$3
shift 3
case $keyring in
    */*) ;;
    *) keyring=./$keyring ;; # gpgv looks a bare file name up in its home directory
esac

# gpgv's messages are not shown (its status lines are judged): a missing gpgv must not read
# as a bad signature
if ! command -v gpgv >/dev/null 2>&1; then
    echo "verify-signature.sh: $what: gpgv not found on PATH; fix: install gpgv in this stage (apt-get install gpgv)" >&2
    exit 1
fi

# gpgv's exit status is not the verdict: its status lines are
status=$(gpgv --status-fd 1 --keyring "$keyring" "$@" 2>/dev/null) || true

verdict=$(printf '%s\n' "$status" | awk -v want="$fpr" '
    function why(s) {
        if (s == "EXPKEYSIG") return "the signing key has expired"
        if (s == "REVKEYSIG") return "the signing key has been revoked"
        if (s == "EXPSIG") return "the signature has expired"
        if (s == "BADSIG") return "the signature does not match the signed data"
        if (s == "ERRSIG") return "the signature could not be checked"
        return "the signing key is not in the keyring"
    }
    function isgood(i,    id) {
        id = substr(signing[i], length(signing[i]) - 15)
        return (id in good) || (signing[i] in good)
    }
    BEGIN { want = toupper(want) }
    $1 != "[GNUPG:]" { next }
    $2 == "NO_PUBKEY" { nopub[$3] = 1 }
    $2 ~ /^(EXPKEYSIG|REVKEYSIG|EXPSIG|BADSIG|ERRSIG|NO_PUBKEY)$/ { nb++; bst[nb] = $2; bkey[nb] = $3 }
    $2 == "GOODSIG" { good[$3] = 1 }
    $2 == "VALIDSIG" {
        n++; signing[n] = $3; digest[n] = $10; primary[n] = (NF >= 12 ? $12 : $3)
    }
    END {
        for (i = 1; i <= n; i++)
            if (isgood(i) && (primary[i] == want || signing[i] == want)) pinned = 1
        # the first refusing signature; one by a key not in the keyring only without a good pinned one
        for (j = 1; j <= nb && bad == ""; j++) {
            s = bst[j]
            if (s == "ERRSIG" && (bkey[j] in nopub)) s = "NO_PUBKEY"
            if (s == "NO_PUBKEY" && pinned) continue
            bad = s; badkey = bkey[j]
        }
        for (i = 1; i <= n; i++)
            if (substr(signing[i], length(signing[i]) - 15) == badkey || signing[i] == badkey)
                badkey = primary[i]
        if (bad != "") { printf "%s by %s (%s)\n", bad, badkey, why(bad); exit }
        for (i = 1; i <= n; i++)
            if (digest[i] == 1 || digest[i] == 2 || digest[i] == 3) {
                printf "WEAK_DIGEST by %s (a digest apt no longer trusts)\n", primary[i]; exit
            }
        if (pinned) { print "ok"; exit }
        for (i = 1; i <= n; i++)
            if (isgood(i)) {
                printf "NOT_PINNED by %s (a good signature, but not by the pinned key)\n", primary[i]
                exit
            }
        print "NO_GOODSIG (gpgv reported no good signature)"
    }')

case $verdict in
    ok) exit 0 ;;
    EXPKEYSIG* | REVKEYSIG* | NO_PUBKEY* | NOT_PINNED* | ERRSIG*)
        fix="pin the key that signs it now, or a refreshed copy of the pinned key (orchestrator lock)" ;;
    *) fix="download the file and its signature again (a mirror mid-sync, or tampering?)" ;;
esac
echo "verify-signature.sh: $what: signature refused, pinned key $fpr: $verdict; fix: $fix" >&2
exit 1
