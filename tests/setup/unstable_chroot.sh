#!/bin/sh
# A Debian unstable chroot with CPython 3.14 and 3.15 (python3.X, its
# shared libpython, its headers and its own test suite), for the 3.14 and
# 3.15 tests, their layout tables and CPython's threading tests run under
# gilprobe:
# gilprobe attaches from outside, through /proc/PID/root.
# Created once (about 40 s and 250 MB) and reused: $GILPROBE_CACHE (default
# /var/cache/gilprobe)/unstable-chroot. Needs root and Debian's mirror.
set -eu
CACHE=${GILPROBE_CACHE:-/var/cache/gilprobe}
DEST=$CACHE/unstable-chroot
PACKAGES=python3.14,libpython3.14,libpython3.14-dev,libpython3.14-testsuite
PACKAGES=$PACKAGES,python3.15,libpython3.15,libpython3.15-dev,libpython3.15-testsuite
# Inside the chroot, the chroot's own path leads to its root: a process run
# in it (`python3.14 -m asyncio ps PID`) finds another chroot process's
# executable by the path /proc/PID/exe shows it, which is the host's.
inner_link() {
    [ -L "$DEST$DEST" ] && return
    mkdir -p "$DEST$(dirname "$DEST")"
    ln -s / "$DEST$DEST"
}
if [ -x "$DEST/usr/bin/python3.14" ] && [ -f "$DEST/usr/include/python3.14/internal/pycore_frame.h" ]; then
    inner_link
    # A chroot made before the test suite or 3.15 were part of it gets them now.
    if [ ! -f "$DEST/usr/lib/python3.14/test/test_threading.py" ] ||
        [ ! -f "$DEST/usr/lib/python3.15/test/test_threading.py" ] ||
        [ ! -f "$DEST/usr/include/python3.15/internal/pycore_frame.h" ]; then
        chroot "$DEST" apt-get -qq -o Acquire::Check-Valid-Until=false update
        chroot "$DEST" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            $(echo "$PACKAGES" | tr , ' ') >/dev/null
    fi
    exit 0
fi
command -v mmdebstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q mmdebstrap
mkdir -p "$CACHE"
rm -rf "$DEST.tmp"
# The mirror's unstable Release can be past its Valid-Until date.
mmdebstrap --quiet --variant=apt --aptopt='Acquire::Check-Valid-Until "false"' \
    --include="$PACKAGES" unstable "$DEST.tmp" http://deb.debian.org/debian
rm -rf "$DEST"
mv "$DEST.tmp" "$DEST"
inner_link
echo "unstable-chroot: $(chroot "$DEST" python3.14 -V), $(chroot "$DEST" python3.15 -V) in $DEST"
