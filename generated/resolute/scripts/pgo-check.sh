#!/bin/sh
# pgo-check.sh STATUS_FILE BUILD_DIR: run after a profile-guided compile (make profile-opt, which
# --enable-optimizations makes the default target), in the build tree BUILD_DIR.
#
# CPython's Makefile runs the training (PROFILE_TASK) with `|| true`, and gcc compiles a file
# whose profile is missing, or a function the training never reached, as cold code (optimised
# for size): a failed or partial training gives an interpreter slower than no PGO at all, with
# nothing in the build saying so. This fails the compile unless
#   - the training run (scripts/pgo-train.py) finished with exit status 0 (STATUS_FILE), and
#   - every object of the interpreter core (Python/, Objects/, Parser/: all linked into every
#     run of the interpreter) has its profile data, a non-empty .gcda beside the .o (libgcov
#     writes one for every instrumented object of a process that exits normally). Modules/ is
#     left out: an extension module the training never imports has no profile, rightly.
# It prints what the profile covered: the counts of objects and of profile files.
set -eu

status_file=${1:?usage: pgo-check.sh STATUS_FILE BUILD_DIR}
build=${2:?usage: pgo-check.sh STATUS_FILE BUILD_DIR}

fail() {
    echo "pgo-check: $1" >&2
    exit 1
}

[ -s "$status_file" ] || fail "the PGO training run did not run to its end (no $status_file): the profile would be partial; read the training's output above"
status=$(cat "$status_file")
[ "$status" = 0 ] || fail "the PGO training run (python -m test --pgo) exited with status $status: tests failed or it stopped early, so the profile is partial; read its output above"

core() {
    find "$build/Python" "$build/Objects" "$build/Parser" -name '*.o'
}
objects=$(core | wc -l)
missing=$(core | while read -r o; do
    [ -s "${o%.o}.gcda" ] || printf ' %s' "${o#"$build"/}"
done)
[ "$objects" -gt 0 ] || fail "no object files under $build/Python, Objects or Parser: not a CPython build tree"
[ -z "$missing" ] || fail "no profile data for some of the $objects interpreter core objects:$missing"
all=$(find "$build" -name '*.gcda' | wc -l)
echo "pgo-check: training exit status 0; profile data for all $objects interpreter core objects, $all profile files in all"
