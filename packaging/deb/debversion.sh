#!/bin/sh
# debversion.sh DESCRIBE: turns the output of git describe --tags --always
# --dirty into a Debian version that sorts as the commits do:
#
#   v1.2.3                  1.2.3
#   v1.2.3-rc1              1.2.3~rc1       (before 1.2.3)
#   v1.2.3-4-gabc1234       1.2.3+git4.gabc1234   (after 1.2.3, before 1.2.4)
#   abc1234 (no tag)        0~gitYYYYMMDDHHMMSS.abc1234   (before any release;
#                           the time is SOURCE_DATE_EPOCH's, else now)
#   ...-dirty               ...+dirty, or .dirty after an untagged commit
set -eu
desc=$1
dirty=
case $desc in *-dirty)
	dirty=dirty
	desc=${desc%-dirty}
	;;
esac
case $desc in
v[0-9]* | [0-9]*.*)
	v=$(printf '%s\n' "${desc#v}" | sed -E 's/-([0-9]+)-g([0-9a-f]+)$/+git\1.g\2/; s/-/~/g')
	[ -z "$dirty" ] || v=$v+dirty
	;;
*)
	stamp=$(date -u -d "@${SOURCE_DATE_EPOCH:-$(date +%s)}" +%Y%m%d%H%M%S)
	v=0~git$stamp.$desc
	[ -z "$dirty" ] || v=$v.dirty
	;;
esac
printf '%s\n' "$v"
