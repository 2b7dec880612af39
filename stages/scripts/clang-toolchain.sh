# shellcheck shell=bash
# Sourced by a native CPython compile stage of a Dockerfile with clang profiles, after
# hardening-flags.sh:
#
#   CLANG_LLVM=19; . /usr/src/scripts/clang-toolchain.sh
#
# sets TOOLCHAIN_CONFIGURE, what configure gets beside --enable-optimizations (PYTHON_PGO):
#   gcc (PYTHON_CLANG empty): --with-lto when PYTHON_LTO is set, and nothing else;
#   clang: LLVM $CLANG_LLVM's bin first on PATH, CC=clang CXX=clang++ (configure then drives
#   PGO with -fprofile-instr-generate/-use and LLVM_PROFDATA), lld as the linker of the
#   interpreter (LDFLAGS_NODIST: not recorded for extensions built later), and
#     PYTHON_LTO       --with-lto=thin (ThinLTO)
#     PYTHON_BOLT      --enable-bolt (llvm-bolt, merge-fdata: the distro's bolt-N)
#     PYTHON_TAIL_CALL --with-tail-call-interp (CPython 3.14+; the stage declares it only there)
#     PYTHON_JIT       --enable-experimental-jit=$PYTHON_JIT (3.14+; LLVM's clang,
#                      llvm-readobj and llvm-objdump on PATH while it builds)
# A tool an option needs that is not installed stops the compile here, by name (the sourcing
# returns 1).
TOOLCHAIN_CONFIGURE=""
if [ -z "${PYTHON_CLANG:-}" ]; then
    if [ -n "${PYTHON_LTO:-}" ]; then TOOLCHAIN_CONFIGURE="--with-lto"; fi
else
    llvm_bin="/usr/lib/llvm-${CLANG_LLVM:?set CLANG_LLVM (the LLVM major) before sourcing clang-toolchain.sh}/bin"
    toolchain_need() { # TOOL...: each an executable in llvm_bin
        for tool; do
            if [ ! -x "$llvm_bin/$tool" ]; then
                echo "clang-toolchain: $llvm_bin/$tool is missing (the build-deps-clang stage installs LLVM $CLANG_LLVM)" >&2
                return 1
            fi
        done
    }
    toolchain_need clang clang++ llvm-profdata llvm-ar ld.lld || return 1
    export PATH="$llvm_bin:$PATH"
    export CC=clang CXX=clang++ LLVM_PROFDATA="$llvm_bin/llvm-profdata" LLVM_AR="$llvm_bin/llvm-ar"
    export LDFLAGS_NODIST="${LDFLAGS_NODIST:-} -fuse-ld=lld"
    if [ -n "${PYTHON_LTO:-}" ]; then TOOLCHAIN_CONFIGURE="--with-lto=thin"; fi
    if [ -n "${PYTHON_BOLT:-}" ]; then
        toolchain_need llvm-bolt merge-fdata || return 1
        TOOLCHAIN_CONFIGURE="$TOOLCHAIN_CONFIGURE --enable-bolt"
    fi
    if [ -n "${PYTHON_TAIL_CALL:-}" ]; then
        TOOLCHAIN_CONFIGURE="$TOOLCHAIN_CONFIGURE --with-tail-call-interp"
    fi
    if [ -n "${PYTHON_JIT:-}" ]; then
        toolchain_need llvm-readobj llvm-objdump || return 1
        TOOLCHAIN_CONFIGURE="$TOOLCHAIN_CONFIGURE --enable-experimental-jit=$PYTHON_JIT"
    fi
    unset -f toolchain_need
    unset llvm_bin
    echo "clang-toolchain: $("$CC" --version | head -n1); configure ${TOOLCHAIN_CONFIGURE:-(no toolchain options)}"
fi
