#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Builds the Debian packages almost and almost-panel as a Debian user
# would: `dpkg-buildpackage -b -uc -us` in a clean copy of the source (the
# files of the working tree that git tracks or would track: uncommitted
# changes and new files included, ignored files and build output not),
# then checks them with
# lintian (any error fails). Copies the .deb files (and the .changes and
# .buildinfo) to OUTDIR.
#
# Usage: sudo build-aux/build-debs.sh [--no-lintian] OUTDIR
#
# The cargo target directory is kept between runs in target/deb (a release
# build of the workspace takes about four minutes on two CPUs the first
# time); ALMOST_CARGO_TARGET_DIR chooses another.

set -euo pipefail

# shellcheck source=build-aux/sandbox.sh source-path=SCRIPTDIR/..
. "$(dirname "${BASH_SOURCE[0]}")/sandbox.sh"

lintian=1
out=
while (($#)); do
    case $1 in
    --no-lintian) lintian=0 ;;
    -h | --help)
        sed -n '4,15p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    -*) sb_die "unknown option $1" ;;
    *)
        [[ -z $out ]] || sb_die "one OUTDIR only"
        out=$1
        ;;
    esac
    shift
done
[[ -n $out ]] || sb_die "usage: $0 [--no-lintian] OUTDIR"

sb_require_root
bash "$SB_SRC_DIR/build-aux/install-deps.sh"
sb_need_cargo

mkdir -p "$out"
out=$(cd "$out" && pwd)
version=$(dpkg-parsechangelog -l "$SB_SRC_DIR/debian/changelog" -S Version)
upstream=${version%-*}

work=$(mktemp -d /var/tmp/almost-deb.XXXXXX)
trap 'rm -rf "$work"' EXIT
src="$work/almost-$upstream"
mkdir "$src"
# What a clean clone with the working tree's changes would hold (deleted
# files that git still tracks are skipped).
(
    cd "$SB_SRC_DIR"
    git ls-files -z --cached --others --exclude-standard |
        while IFS= read -r -d '' f; do [[ -e $f || -L $f ]] && printf '%s\0' "$f"; done |
        tar --null -T - -cf -
) | tar -x -C "$src"

export ALMOST_CARGO_TARGET_DIR=${ALMOST_CARGO_TARGET_DIR:-$SB_SRC_DIR/target/deb}
mkdir -p "$ALMOST_CARGO_TARGET_DIR"
sb_info "build-debs: dpkg-buildpackage -b -uc -us in $src (cargo target: $ALMOST_CARGO_TARGET_DIR)"
(
    cd "$src"
    dpkg-checkbuilddeps
    dpkg-buildpackage -b -uc -us
) >"$work/build.log" 2>&1 || {
    echo "exit status $?" >&2
    tail -n 80 "$work/build.log" >&2
    sb_die "dpkg-buildpackage failed (the last lines of its log above)"
}

changes=$(find "$work" -maxdepth 1 -name "almost_${version}_*.changes" | head -n1)
[[ -n $changes ]] || sb_die "dpkg-buildpackage made no .changes file"
if ((lintian)); then
    # Errors fail; warnings and the rest are shown.
    sb_info "build-debs: lintian"
    if ! lintian --fail-on error --display-info --no-tag-display-limit "$changes"; then
        sb_die "lintian reports errors (above)"
    fi
fi
cp "$work"/*.deb "$changes" "$work"/*.buildinfo "$out"/
sb_info "build-debs: $(cd "$out" && ls ./*.deb | tr '\n' ' ')in $out"
