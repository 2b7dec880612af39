#!/usr/bin/env bash
# demo.sh - `make demo`: the main job on the built-in default, after `make provision`.
#
# The e2e matrix (tests/e2e/images.yaml: 3.14 + 3.14t, 3.13, 3.12 on bookworm, trixie, noble
# and resolute, every method and variant, amd64 + arm64 where the host can build it) copied into
# the demo's state directory with a `signing:` section, then lock, render, release (build,
# smoke-test, push, sign, attest SBOM + OpenVEX + provenance, the scan gate) into the local
# registry, `orchestrator verify` on every short tag, `orchestrator scan` with the demo's
# vulnerability DB, and a summary of what was published and what to try next.
#
# State (kept between runs): ${ORCH_DEMO_DIR:-.orchestrator/demo}: images.yaml, images.lock,
# generated/, the cosign key pair made on the first run (cosign.key, cosign.pub; its password in
# cosign.password, 0600) and the release report (release.json).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PY:-.venv/bin/python}
STATE=${ORCH_DEMO_DIR:-.orchestrator/demo}
REGISTRY=${ORCH_REGISTRY:-127.0.0.1:5000}
CONFIG=$STATE/images.yaml

say() { printf '[demo] %s\n' "$*"; }

mkdir -p "$STATE"
if [[ ! -s $STATE/cosign.key || ! -s $STATE/cosign.password ]]; then
    say "first run: a cosign key pair for the demo's signatures in $STATE"
    rm -f "$STATE/cosign.key" "$STATE/cosign.pub"
    (umask 077 && head -c 24 /dev/urandom | base64 >"$STATE/cosign.password")
    (cd "$STATE" && COSIGN_PASSWORD=$(cat cosign.password) cosign generate-key-pair >/dev/null)
fi
COSIGN_PASSWORD=$(cat "$STATE/cosign.password")
export COSIGN_PASSWORD

# the pinned grype (tools/go-tools.txt; built once per machine) for the release gate and scan
bash scripts/install-go-tools.sh grype

# the e2e matrix as it is now, plus signing (the key pair above, relative to images.yaml) and
# scan: the demo's own vulnerability DB (hostkit/demo_db.py: advisories written there, made
# into a grype DB by grype's own code; kept two days), the gate and the OpenVEX rules
{
    cat tests/e2e/images.yaml
    printf '\n# make demo (scripts/demo.sh): sign and attest what the demo publishes\n'
    printf 'signing:\n  key: cosign.key\n'
    "$PY" -m hostkit.demo_db "$STATE"
} >"$CONFIG.new"
mv "$CONFIG.new" "$CONFIG"

start=$(date +%s)
# the lock is derived state here: made anew from this host's mirror and registry every run (a
# lock kept from an earlier run pins base digests a re-provisioned registry no longer has:
# every build then fails with "not found")
rm -f "$STATE/images.lock"
"$PY" -m orchestrator lock --config "$CONFIG"
"$PY" -m orchestrator render --config "$CONFIG"
rc=0
"$PY" -m orchestrator release --config "$CONFIG" --report "$STATE/release.json" || rc=$?

repo=$("$PY" -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["publish"]["repository"])' "$CONFIG")
mapfile -t short < <(jq -r '.cells[] | select(.status == "ok" or .status == "unchanged") | .tags[]' "$STATE/release.json" |
    grep -E '^3\.[0-9]+t?-(runtime|dev|minimal)$' | sort -V)
if ((${#short[@]})); then
    say "orchestrator verify: signature, SBOM and provenance of ${#short[@]} short tags"
    refs=()
    for t in "${short[@]}"; do refs+=("$REGISTRY/$repo:$t"); done
    "$PY" -m orchestrator verify --config "$CONFIG" "${refs[@]}" || rc=$((rc ? rc : $?))
fi
say "orchestrator scan: every published image, per platform, by its attested SBOM and OpenVEX"
"$PY" -m orchestrator scan --config "$CONFIG" --json "$STATE/scan.json" || rc=$((rc ? rc : $?))

say "done in $(($(date +%s) - start)) s (exit $rc)"
say "published (short tags; every cell also has distro, version and immutable tags):"
for t in "${short[@]}"; do
    say "  $REGISTRY/$repo:$t"
done
say "try one:"
say "  docker run --rm $REGISTRY/$repo:3.14-runtime python3 -c 'import sys; print(sys.version)'"
say "  docker run --rm --platform linux/arm64 $REGISTRY/$repo:3.14-runtime python3 -c 'import platform; print(platform.machine())'"
say "  docker run --rm $REGISTRY/$repo:3.14t-runtime python3 -c 'import sys; print(sys._is_gil_enabled())'"
say "reports: $STATE/release.json, $STATE/scan.json   config: $CONFIG   public key: $STATE/cosign.pub"
exit "$rc"
