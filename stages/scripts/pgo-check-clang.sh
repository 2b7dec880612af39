#!/bin/sh
# pgo-check-clang.sh STATUS_FILE BUILD_LOG BUILD_DIR LLVM_PROFDATA: pgo-check.sh for a clang
# compile (profiles.*.toolchain clang), run after the profile-guided build in BUILD_DIR whose
# output is in BUILD_LOG.
#
# CPython's Makefile runs the training with `|| true` and clang, like gcc, optimises code the
# profile never saw as cold. Under clang the training writes raw profiles (code-<pid>.profclangr)
# that llvm-profdata merges into BUILD_DIR/code.profclangd, the profile the rebuild uses. This
# fails the compile unless
#   - the training run (scripts/pgo-train.py) finished with exit status 0 (STATUS_FILE);
#   - the merged profile exists and holds counted functions;
#   - the interpreter core ran in the training: the eval loop (Python/ceval.c), attribute
#     lookup (Objects/object.c) and the parser (Parser/pegen.c) have non-zero counts;
#   - clang found profile data for every file of the interpreter core (Python/, Objects/,
#     Parser/): no "no profile data available for file" warning about one in BUILD_LOG
#     (-Wprofile-instr-unprofiled). Other files (test programs, modules the training never
#     imports) are listed, not fatal.
set -eu

usage="usage: pgo-check-clang.sh STATUS_FILE BUILD_LOG BUILD_DIR LLVM_PROFDATA"
status_file=${1:?$usage}
log=${2:?$usage}
build=${3:?$usage}
profdata=${4:?$usage}
profile="$build/code.profclangd"
core_functions="_PyEval_EvalFrameDefault PyObject_GetAttr _PyPegen_run_parser"

fail() {
    echo "pgo-check-clang: $1" >&2
    exit 1
}

[ -s "$status_file" ] || fail "the PGO training run did not run to its end (no $status_file): the profile would be partial; read the training's output above"
status=$(cat "$status_file")
[ "$status" = 0 ] || fail "the PGO training run (python -m test --pgo) exited with status $status: tests failed or it stopped early, so the profile is partial; read its output above"
grep -q "Rebuilding with profile guided optimizations" "$log" \
    || fail "$log holds no profile-use build (no 'Rebuilding with profile guided optimizations'): nothing to check"
[ -s "$profile" ] || fail "no merged profile $profile: llvm-profdata merged nothing (did the training write code-*.profclangr files?)"

listing=$("$profdata" show --all-functions "$profile") \
    || fail "$profdata show $profile failed: the profile is unreadable"
functions=$(printf '%s\n' "$listing" | sed -n 's/^Total functions: *//p')
[ "${functions:-0}" -gt 0 ] || fail "$profile counts no function"
for f in $core_functions; do
    # "  NAME:" then, a few lines on, "    Function count: N"
    count=$(printf '%s\n' "$listing" | awk -v name="  $f:" '
        $0 == name { found = 1; next }
        found && /Function count:/ { print $NF; exit }')
    [ "${count:-0}" -gt 0 ] || fail "the profile has no count for $f: the training did not run the interpreter core"
done

# warning: no profile data available for file "Objects/listobject.c" [-Wprofile-instr-unprofiled]
unprofiled=$(grep -o 'no profile data available for file "[^"]*"' "$log" \
    | sed 's/^no profile data available for file "//; s/"$//' \
    | sed "s|^$build/||; s|^\./||" | LC_ALL=C sort -u)
core=$(printf '%s\n' "$unprofiled" | grep -E '^(Python|Objects|Parser)/' || true)
other=$(printf '%s\n' "$unprofiled" | grep -vE '^(Python|Objects|Parser)/' | grep . || true)
[ -z "$core" ] || fail "clang found no profile data for interpreter core file(s): $(echo "$core" | tr '\n' ' ')(-Wprofile-instr-unprofiled in $log)"
raw=$(find "$build" -maxdepth 1 -name '*.profclangr' | wc -l)
echo "pgo-check-clang: training exit status 0; $functions functions in $profile, the core ($core_functions) counted; clang found profile data for every interpreter core file; $raw raw profiles${other:+; none for (not the interpreter core): $(echo "$other" | tr '\n' ' ')}"
