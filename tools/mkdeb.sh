#!/bin/sh
# Builds a Debian package of the gilprobe in this tree: VERSION OUTPUT.deb.
# Installs the build into a staging root (make install, PREFIX=/usr), and
# writes DEBIAN/control whose Depends are the packages that own the shared
# libraries the binary links (ldd, then dpkg -S), at least the versions
# installed here - what apt needs to install it on a fresh Debian.
set -eu
VERSION=$1
OUT=$2
STAGE=build/deb-root
rm -rf "$STAGE"
make --no-print-directory install DESTDIR="$STAGE" PREFIX=/usr >/dev/null
gzip -9n "$STAGE/usr/share/man/man1/gilprobe.1"
mkdir -p "$STAGE/usr/share/doc/gilprobe"
cp README.md "$STAGE/usr/share/doc/gilprobe/README.md"

depends=""
for lib in $(ldd gilprobe | awk '$3 ~ /^\// {print $3}'); do
    real=$(readlink -f "$lib")
    pkg=$(dpkg -S "$lib" 2>/dev/null || dpkg -S "$real" 2>/dev/null || true)
    pkg=${pkg%%:*}
    [ -n "$pkg" ] || { echo "mkdeb: no package owns $lib" >&2; exit 1; }
    case " $depends " in *" $pkg "*) continue ;; esac
    depends="$depends $pkg"
done
control_depends=""
for pkg in $(echo "$depends" | tr ' ' '\n' | sort -u); do
    ver=$(dpkg-query -W -f='${Version}' "$pkg")
    control_depends="${control_depends:+$control_depends, }$pkg (>= $ver)"
done

mkdir -p "$STAGE/DEBIAN"
cat > "$STAGE/DEBIAN/control" <<CONTROL
Package: gilprobe
Version: $VERSION
Architecture: $(dpkg --print-architecture)
Maintainer: gilprobe developers <gilprobe@localhost>
Depends: $control_depends
Section: devel
Priority: optional
Installed-Size: $(du -sk "$STAGE/usr" | cut -f1)
Description: GIL, thread and event-loop observer for running CPython processes
 gilprobe attaches to a running CPython 3.8-3.14 process without stopping
 it and reports where the GIL goes, who waits for it and for how long, what
 every thread does, which locks are waited on, how long asyncio event loops
 stall, and which well-known failure scenario it is looking at.
CONTROL
dpkg-deb --root-owner-group --build "$STAGE" "$OUT" >/dev/null
echo "$OUT: Depends: $control_depends"
