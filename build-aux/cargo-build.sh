#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Meson's one cargo build (meson.build): builds every binary of the
# workspace in one invocation and copies almost-panel, almost and xtask to
# the meson build directory.
# The panel is built with the application id given (ALMOST_APP_ID, read by
# build.rs).
# Usage: cargo-build.sh CARGO SOURCE_DIR CARGO_TARGET_DIR debug|release APP_ID OUTDIR
set -eu
cargo=$1 src=$2 target=$3 profile=$4 app_id=$5 out=$6
case $profile in
release) flag=--release ;;
debug) flag= ;;
*) echo "cargo-build.sh: unknown profile $profile" >&2; exit 2 ;;
esac
# shellcheck disable=SC2086 # $flag is empty or one word
ALMOST_APP_ID=$app_id CARGO_TARGET_DIR=$target "$cargo" build $flag --workspace --bins \
    --manifest-path "$src/Cargo.toml"
for bin in almost-panel almost xtask; do
    cp -f "$target/$profile/$bin" "$out/$bin.tmp"
    mv -f "$out/$bin.tmp" "$out/$bin"
done
