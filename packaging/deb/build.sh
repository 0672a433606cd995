#!/bin/sh
# Builds cairn's Debian package from this tree: OUT/cairn_VERSION_ARCH.deb
# (OUT: dist), with dpkg-deb from a staged tree, no debhelper and no network
# beyond Go's module cache. make deb runs it.
#
#   VERSION  the package's version (default: git describe, made a Debian
#            version: v1.2.3 -> 1.2.3, v1.2.3-4-gabc1234 -> 1.2.3+git4.gabc1234,
#            an untagged commit -> 0~gitYYYYMMDDHHMMSS.abc1234, "+dirty" or
#            ".dirty" for a tree with changes); also the version cairn
#            reports (cairn version, cairn_build_info).
#   ARCH     the Debian architecture (default: dpkg --print-architecture);
#            the binary is cross-built for it.
#   OUT      the directory the .deb goes to (default: dist).
#   GO       the go command (default: go in PATH, else /usr/local/go/bin/go).
#   SOURCE_DATE_EPOCH  the time of every file, the manual pages' date and
#            the changelog's (default: the commit's time): two builds of one
#            commit are the same bytes.
#
# What goes in: the static binary (/usr/bin/cairn), systemd/cairn.service,
# cairn-promote.service and cairn-promote.timer, packaging/deb/cairn.default
# and cairn-promote.default as the conffiles /etc/default/cairn and
# /etc/default/cairn-promote, the manual pages and completions generated
# from the command line (go run ./packaging/deb), the alert rules and dashboards found under prometheus/
# and grafana/ (or dashboards/), into /usr/share/cairn/prometheus and
# /usr/share/cairn/grafana, and the maintainer scripts of this directory.
set -eu

top=$(cd "$(dirname "$0")/../.." && pwd)
here=$top/packaging/deb
cd "$top"

GO=${GO:-$(command -v go 2>/dev/null || echo /usr/local/go/bin/go)}
OUT=${OUT:-dist}
ARCH=${ARCH:-$(dpkg --print-architecture)}
MAINTAINER=${MAINTAINER:-cairn developers <cairn@cairn-cm.invalid>}
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
export SOURCE_DATE_EPOCH

if [ -z "${VERSION:-}" ]; then
	VERSION=$("$here/debversion.sh" "$(git describe --tags --always --dirty)")
fi
case $VERSION in
[0-9]*) ;;
*) echo "build.sh: VERSION $VERSION does not start with a digit (a Debian version must)" >&2; exit 2 ;;
esac

case $ARCH in
amd64 | arm64 | riscv64 | s390x | mips64le) goarch=$ARCH ;;
i386) goarch=386 ;;
armhf) goarch=arm GOARM=7 && export GOARM ;;
armel) goarch=arm GOARM=5 && export GOARM ;;
ppc64el) goarch=ppc64le ;;
*) echo "build.sh: no Go architecture for Debian's $ARCH" >&2; exit 2 ;;
esac

stage=$(mktemp -d "${TMPDIR:-/tmp}/cairn-deb.XXXXXX")
trap 'rm -rf "$stage"' EXIT
umask 022

# The binary: static (no cgo: nothing in cairn calls C), without the build
# machine's paths, and reporting the package's version.
mkdir -p "$stage/usr/bin"
CGO_ENABLED=0 GOOS=linux GOARCH=$goarch "$GO" build -trimpath \
	-ldflags "-s -w -X github.com/cairn-cm/cairn/internal/cli.version=$VERSION" \
	-o "$stage/usr/bin/cairn" ./cmd/cairn

for u in cairn.service cairn-promote.service cairn-promote.timer; do
	install -D -m 0644 "systemd/$u" "$stage/lib/systemd/system/$u"
done
install -D -m 0644 "$here/cairn.default" "$stage/etc/default/cairn"
install -D -m 0644 "$here/cairn-promote.default" "$stage/etc/default/cairn-promote"

# Manual pages and completions, from the command line's own model.
date=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%d)
"$GO" run ./packaging/deb -root "$stage" -version "$VERSION" -date "$date"
gzip -9n "$stage"/usr/share/man/man1/*.1

# Alert rules and dashboards, whichever exist in this tree, as they lie in
# it: /usr/share/cairn/prometheus/alerts.yml,
# /usr/share/cairn/grafana/cairn-fleet.json (promtool's test files stay
# behind).
for f in prometheus/*.yml prometheus/*.yaml grafana/*.json dashboards/*.json; do
	[ -f "$f" ] || continue
	case $f in *_test.yml | *_test.yaml) continue ;; esac
	dir=${f%%/*}
	[ "$dir" != dashboards ] || dir=grafana
	install -D -m 0644 "$f" "$stage/usr/share/cairn/$dir/$(basename "$f")"
done

doc=$stage/usr/share/doc/cairn
install -D -m 0644 "$here/copyright" "$doc/copyright"
commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
# A native package (no Debian revision): the changelog is changelog.gz.
{
	printf 'cairn (%s) unstable; urgency=medium\n\n' "$VERSION"
	printf '  * Built from the cairn tree at commit %s (make deb).\n\n' "$commit"
	printf ' -- %s  %s\n' "$MAINTAINER" "$(LC_ALL=C date -u -R -d "@$SOURCE_DATE_EPOCH")"
} | gzip -9n >"$doc/changelog.gz"
install -D -m 0644 "$here/lintian-overrides" "$stage/usr/share/lintian/overrides/cairn"

# Control area.
mkdir -p "$stage/DEBIAN"
for s in postinst prerm postrm; do
	install -m 0755 "$here/$s" "$stage/DEBIAN/$s"
done
printf '%s\n' /etc/default/cairn /etc/default/cairn-promote >"$stage/DEBIAN/conffiles"
chmod 0644 "$stage/DEBIAN/conffiles"
# Installed-Size as dpkg-gencontrol reckons it: KiB per file rounded up,
# one for every other entry.
size=$(cd "$stage" && find . -path ./DEBIAN -prune -o ! -name . -printf '%y %s\n' |
	awk '$1 == "f" { s += int(($2 + 1023) / 1024); next } { s += 1 } END { print s }')
sed -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$ARCH/" -e "s/@SIZE@/$size/" -e "s/@MAINTAINER@/$MAINTAINER/" \
	"$here/control.in" >"$stage/DEBIAN/control"
# md5sums, as dh_md5sums writes it: every file but the conffiles (dpkg
# keeps their sums itself).
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\n' | LC_ALL=C sort |
	grep -vxF -f "$stage/DEBIAN/conffiles" -e "$(sed 's|^/||' "$stage/DEBIAN/conffiles")" |
	xargs -d '\n' md5sum) >"$stage/DEBIAN/md5sums"
chmod 0644 "$stage/DEBIAN/control" "$stage/DEBIAN/md5sums"

find "$stage" -type d -exec chmod 0755 {} +
find "$stage" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
mkdir -p "$OUT"
deb=$OUT/cairn_${VERSION}_$ARCH.deb
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb"
