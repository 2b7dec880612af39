# shellcheck shell=bash
# Sourced by the CPython compile stages (rendered next to the Dockerfile by `orchestrator
# render`, bind-mounted into the RUN, never in an image):
#
#   HARDENING_ARCH=ARCH; . /usr/src/scripts/hardening-flags.sh
#
# sets HARDENING_CFLAGS (compiler + preprocessor flags) and HARDENING_LDFLAGS for a compile
# whose code runs on the Debian architecture ARCH (amd64, arm64). The flags come from the
# distro's own dpkg-buildflags, so its policy flows through: DEB_BUILD_MAINT_OPTIONS (set by
# the stage from images.yaml build.hardening) turns features on and off. What an older dpkg
# does not know yet is added here with the same meaning (bookworm's dpkg 1.21 has neither
# stack-clash nor control-flow protection; trixie's 1.22 has both):
#   stack-clash    -fstack-clash-protection
#   cf-protection  -fcf-protection (amd64: CET IBT + shadow stack), -mbranch-protection=standard
#                  (arm64: BTI + PAC)
# HARDENING_DISABLE lists the features images.yaml turned off (space separated), so they are
# not added back.
arch=${HARDENING_ARCH:?set HARDENING_ARCH (amd64, arm64) before sourcing hardening-flags.sh}
# CPython picks its own optimisation level (OPT); no debug info in the images. The distro
# decides hardening only, the profile decides optimisation: Ubuntu's dpkg turns on LTO (fat
# objects), frame pointers and -Bsymbolic-functions by default (noble, resolute), which made
# every Ubuntu compile an LTO build with frame pointers whatever images.yaml's profile said
# (and took twice as long). They are stripped here; profiles add LTO (--with-lto) and frame
# pointers (profiles.*.frame_pointers) themselves.
NOT_HARDENING="-flto=auto -ffat-lto-objects -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer"
export DEB_CFLAGS_MAINT_STRIP="${DEB_CFLAGS_MAINT_STRIP:-} -g -O2 $NOT_HARDENING"
export DEB_LDFLAGS_MAINT_STRIP="${DEB_LDFLAGS_MAINT_STRIP:-} -flto=auto -ffat-lto-objects -Wl,-Bsymbolic-functions"

HARDENING_CFLAGS="$(DEB_HOST_ARCH="$arch" dpkg-buildflags --get CFLAGS) $(DEB_HOST_ARCH="$arch" dpkg-buildflags --get CPPFLAGS)"
HARDENING_LDFLAGS="$(DEB_HOST_ARCH="$arch" dpkg-buildflags --get LDFLAGS)"

hardening_wanted() { # FEATURE: not in HARDENING_DISABLE
    case " ${HARDENING_DISABLE:-} " in *" $1 "*) return 1 ;; esac
}
hardening_add() { # FLAG: appended to HARDENING_CFLAGS unless dpkg already gave it
    case " $HARDENING_CFLAGS " in *" $1 "* | *" ${1%%=*}="*) ;; *) HARDENING_CFLAGS="$HARDENING_CFLAGS $1" ;; esac
}

if hardening_wanted stack-clash; then
    hardening_add -fstack-clash-protection
fi
if hardening_wanted cf-protection; then
    case $arch in
        amd64) hardening_add -fcf-protection ;;
        arm64) hardening_add -mbranch-protection=standard ;;
    esac
fi
unset -f hardening_wanted hardening_add
unset NOT_HARDENING
export HARDENING_CFLAGS HARDENING_LDFLAGS
