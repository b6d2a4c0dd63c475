#!/bin/sh
# A free-threaded CPython ("3.13t", "3.14t": --disable-gil) for the
# free-threading tests, built from Debian's python3.X source (no binary
# package exists). Usage: freethreaded.sh [3.13|3.14] (default 3.13).
# Built once (about 10 minutes on 2 cores) and reused:
# $GILPROBE_CACHE (default /var/cache/gilprobe)/python3.Xt/bin/python3.Xt.
set -eu
MINOR=${1:-3.13}
case "$MINOR" in
3.13) VERSION=3.13.15 ;;
3.14) VERSION=3.14.10 ;;
*)
    echo "freethreaded: unknown version '$MINOR' (3.13 or 3.14)" >&2
    exit 2
    ;;
esac
CACHE=${GILPROBE_CACHE:-/var/cache/gilprobe}
DEST=$CACHE/python${MINOR}t
if [ -x "$DEST/bin/python${MINOR}t" ]; then
    exit 0
fi
fail() {
    echo "freethreaded: $MINOR: $*" >&2
    exit 1
}
for pkg in zlib1g-dev libffi-dev xz-utils curl; do
    dpkg -s "$pkg" >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$pkg"
done
mkdir -p "$CACHE"
WORK=$(mktemp -d "$CACHE/build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
URL=http://deb.debian.org/debian/pool/main/p/python$MINOR/python${MINOR}_$VERSION.orig.tar.xz
curl -sSf -o "$WORK/src.tar.xz" "$URL" || fail "cannot download $URL"
tar -xf "$WORK/src.tar.xz" -C "$WORK" || fail "cannot unpack $URL"
cd "$WORK/Python-$VERSION"
./configure --quiet --disable-gil --prefix="$DEST.tmp" --without-ensurepip >"$WORK/configure.log" 2>&1 ||
    { tail -n 30 "$WORK/configure.log" >&2; fail "configure failed"; }
make -s -j"$(nproc)" >"$WORK/make.log" 2>&1 || { tail -n 30 "$WORK/make.log" >&2; fail "make failed"; }
make -s altinstall >"$WORK/install.log" 2>&1 ||
    { tail -n 30 "$WORK/install.log" >&2; fail "make altinstall failed"; }
[ -x "$DEST.tmp/bin/python${MINOR}t" ] || fail "no bin/python${MINOR}t after make altinstall"
rm -rf "$DEST"
mv "$DEST.tmp" "$DEST"
# Its headers and pyconfig.h still name the install prefix: fine, only
# the layout generator reads them.
echo "freethreaded: $("$DEST/bin/python${MINOR}t" -VV) in $DEST"
