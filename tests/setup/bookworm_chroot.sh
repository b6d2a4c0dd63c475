#!/bin/sh
# A minimal Debian 12 (bookworm) root, as a fresh machine has it, for the
# test that installs gilprobe's .deb with apt (make deb) and runs it: the
# package's Depends must be enough. Created once (about 40 s, 150 MB) and
# reused read-only (the test works on a copy): $GILPROBE_CACHE (default
# /var/cache/gilprobe)/bookworm-root. Needs root and Debian's mirror.
set -eu
CACHE=${GILPROBE_CACHE:-/var/cache/gilprobe}
DEST=$CACHE/bookworm-root
[ -x "$DEST/usr/bin/apt-get" ] && exit 0
command -v mmdebstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q mmdebstrap
mkdir -p "$CACHE"
rm -rf "$DEST.tmp"
# Package lists kept: installing into a copy needs no `apt-get update`.
mmdebstrap --quiet --variant=apt --skip=cleanup/apt/lists bookworm "$DEST.tmp" \
    http://deb.debian.org/debian
rm -rf "$DEST"
mv "$DEST.tmp" "$DEST"
echo "bookworm-root: $(cat "$DEST/etc/debian_version") in $DEST"
