#!/bin/sh
# dev-c-extension-wheel (dev, under emulation): the C extension compiled and linked with exactly
# the toolchain the interpreter's sysconfig names (CC, CFLAGS, CCSHARED, LDSHARED: what
# setuptools uses; a cross-built CPython must name the native gcc here, not the cross one),
# then imported. The wheel and auditwheel steps of the native check are pure Python, checked on
# the build platform. Argument: the extension's C source (spam.c).
set -e  # as sh -ec runs it
cd "$(mktemp -d)"
printf '%s' "$1" > spam.c
v() { python3 -c "import sysconfig; print(sysconfig.get_config_var('$1') or '')"; }
inc=$(python3 -c "import sysconfig; print(sysconfig.get_paths()['include'])")
suffix=$(v EXT_SUFFIX)
echo "CC=$(v CC) LDSHARED=$(v LDSHARED)"
# shellcheck disable=SC2046  # CC, CFLAGS, CCSHARED and LDSHARED are lists of words
$(v CC) $(v CFLAGS) $(v CCSHARED) -I"$inc" -c spam.c -o spam.o
# shellcheck disable=SC2046
$(v LDSHARED) spam.o -o "spam$suffix"
python3 -c "import spam; assert spam.add(2, 3) == 5; print('spam ok', spam.__file__)"
