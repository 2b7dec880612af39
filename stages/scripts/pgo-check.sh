#!/bin/sh
# pgo-check.sh STATUS_FILE BUILD_LOG BUILD_DIR: run after a profile-guided compile (make
# profile-opt, which --enable-optimizations makes the default target) whose output is in
# BUILD_LOG, in the build tree BUILD_DIR.
#
# CPython's Makefile runs the training (PROFILE_TASK) with `|| true`, and gcc compiles a file
# whose profile is missing as cold code (optimised for size): a failed or partial training gives
# an interpreter slower than no PGO at all, with nothing in the build saying so. This fails the
# compile unless
#   - the training run (scripts/pgo-train.py) finished with exit status 0 (STATUS_FILE), and
#   - gcc found profile data for every file of the interpreter core (Python/, Objects/, Parser/):
#     no -Wmissing-profile warning about one in the profile-use build's output. gcc's own
#     warning, not a count of .gcda files: a file without functions (data tables, code under
#     #ifdef for another build such as the free-threaded one) or in assembly has no profile and
#     needs none. A warning about another file (a test program such as Programs/_testembed, an
#     extension module the training never imports) is listed, not fatal.
# It prints what the profile covered: the number of profile files (.gcda) in the build tree.
set -eu

usage="usage: pgo-check.sh STATUS_FILE BUILD_LOG BUILD_DIR"
status_file=${1:?$usage}
log=${2:?$usage}
build=${3:?$usage}

fail() {
    echo "pgo-check: $1" >&2
    exit 1
}

[ -s "$status_file" ] || fail "the PGO training run did not run to its end (no $status_file): the profile would be partial; read the training's output above"
status=$(cat "$status_file")
[ "$status" = 0 ] || fail "the PGO training run (python -m test --pgo) exited with status $status: tests failed or it stopped early, so the profile is partial; read its output above"
grep -q "Rebuilding with profile guided optimizations" "$log" \
    || fail "$log holds no profile-use build (no 'Rebuilding with profile guided optimizations'): nothing to check"

# '<dir>/Objects/listobject.gcda' profile count data file not found [-Wmissing-profile]
unprofiled=$(grep -o "[^' ]*\.gcda' profile count data file not found" "$log" \
    | sed "s/' profile count data file not found//; s|^$build/||; s|^\./||" | LC_ALL=C sort -u)
core=$(printf '%s\n' "$unprofiled" | grep -E '^(Python|Objects|Parser)/' || true)
other=$(printf '%s\n' "$unprofiled" | grep -vE '^(Python|Objects|Parser)/' | grep . || true)
[ -z "$core" ] || fail "gcc found no profile data for interpreter core file(s): $(echo "$core" | tr '\n' ' ')(-Wmissing-profile in $log)"
profiles=$(find "$build" -name '*.gcda' | wc -l)
echo "pgo-check: training exit status 0; gcc found profile data for every interpreter core file; $profiles profile files in all${other:+; none for (not the interpreter core): $(echo "$other" | tr '\n' ' ')}"
