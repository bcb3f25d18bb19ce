#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The install test (meson test install): `meson install --destdir` into a
# temporary directory, then the installed files must be exactly those of
# build-aux/installed-files.txt (written for --prefix=/usr, with @APP_ID@
# for the application id of the build's profile, @UNITDIR@ for the systemd
# unit directory): a missing or an unexpected file fails. Never installs
# into the real system.
# Usage: install-test.sh MESON BUILD_DIR PREFIX APP_ID UNITDIR EXPECTED_LIST
set -eu
meson=$1 build=$2 prefix=$3 app_id=$4 unitdir=$5 expected=$6
if [ "$prefix" != /usr ]; then
    echo "installed-files.txt is written for --prefix=/usr, not $prefix: skipped"
    exit 77
fi
dest=$(mktemp -d "${TMPDIR:-/tmp}/almost-install.XXXXXX")
trap 'rm -rf "$dest"' EXIT
"$meson" install -C "$build" --no-rebuild --quiet --destdir "$dest" >"$dest.log" 2>&1 || {
    cat "$dest.log" >&2
    rm -f "$dest.log"
    echo "meson install failed" >&2
    exit 1
}
rm -f "$dest.log"
(cd "$dest" && find . ! -type d | sed 's|^\.||' | LC_ALL=C sort) >"$dest.got"
grep -v -e '^#' -e '^$' "$expected" | sed -e "s|@APP_ID@|$app_id|g" -e "s|@UNITDIR@|$unitdir|g" | LC_ALL=C sort >"$dest.want"

# compare WANT GOT: says what differs; fails if anything does.
compare() {
    missing=$(LC_ALL=C comm -23 "$1" "$2")
    unexpected=$(LC_ALL=C comm -13 "$1" "$2")
    if [ -n "$missing" ]; then
        echo "not installed (listed in build-aux/installed-files.txt):" >&2
        printf '%s\n' "$missing" | sed 's/^/  /' >&2
    fi
    if [ -n "$unexpected" ]; then
        echo "installed but not listed in build-aux/installed-files.txt:" >&2
        printf '%s\n' "$unexpected" | sed 's/^/  /' >&2
    fi
    [ -z "$missing" ] && [ -z "$unexpected" ]
}
status=0
compare "$dest.want" "$dest.got" || status=1

# The controls: a list with one file too many, or one too few, must fail.
{ cat "$dest.want"; echo /usr/share/almost/not-installed; } | LC_ALL=C sort >"$dest.ctl"
if compare "$dest.ctl" "$dest.got" 2>/dev/null; then
    echo "control: a file missing from the install was not noticed" >&2
    status=1
fi
sed 1d "$dest.want" >"$dest.ctl"
if compare "$dest.ctl" "$dest.got" 2>/dev/null; then
    echo "control: an unlisted installed file was not noticed" >&2
    status=1
fi
rm -f "$dest.ctl"
# The binaries are executable, and the installed policy and units name the
# installed almost.
for f in /usr/bin/almost /usr/bin/almost-panel; do
    [ -x "$dest$f" ] || { echo "$f is not executable" >&2; status=1; }
done
grep -q 'ExecStart=/usr/bin/almost boot$' "$dest$unitdir/almost-boot.service" ||
    { echo "almost-boot.service does not run /usr/bin/almost boot" >&2; status=1; }
grep -qF '>/usr/bin/almost</annotate>' "$dest/usr/share/polkit-1/actions/org.almost.policy" ||
    { echo "the policy does not name /usr/bin/almost" >&2; status=1; }
rm -f "$dest.got" "$dest.want"
[ $status -eq 0 ] && echo "installed files match build-aux/installed-files.txt"
exit $status
