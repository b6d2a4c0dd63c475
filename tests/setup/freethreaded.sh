#!/bin/sh
# A free-threaded CPython 3.13 ("3.13t", --disable-gil) for the free-threading
# tests, built from Debian's python3.13 source (no binary package exists).
# Built once (about 10 minutes on 2 cores) and reused:
# $GILPROBE_CACHE (default /var/cache/gilprobe)/python3.13t.
set -eu
CACHE=${GILPROBE_CACHE:-/var/cache/gilprobe}
DEST=$CACHE/python3.13t
VERSION=3.13.15
if [ -x "$DEST/bin/python3.13t" ]; then
    exit 0
fi
for pkg in zlib1g-dev libffi-dev xz-utils curl; do
    dpkg -s "$pkg" >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$pkg"
done
mkdir -p "$CACHE"
WORK=$(mktemp -d "$CACHE/build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
curl -sSf -o "$WORK/src.tar.xz" \
    "http://deb.debian.org/debian/pool/main/p/python3.13/python3.13_$VERSION.orig.tar.xz"
tar -xf "$WORK/src.tar.xz" -C "$WORK"
cd "$WORK/Python-$VERSION"
./configure --quiet --disable-gil --prefix="$DEST.tmp" --without-ensurepip >/dev/null
make -s -j"$(nproc)" >/dev/null 2>&1
make -s altinstall >/dev/null 2>&1
rm -rf "$DEST"
mv "$DEST.tmp" "$DEST"
# Its headers and pyconfig.h still name the install prefix: fine, only
# the layout generator reads them.
echo "freethreaded: $("$DEST/bin/python3.13t" -VV) in $DEST"
