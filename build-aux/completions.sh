#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Generates almost's completions with the xtask into OUTDIR, the bash one
# named `almost` as bash-completion's directory expects.
# Usage: completions.sh XTASK OUTDIR
set -eu
xtask=$1 out=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$xtask" completions "$tmp" >/dev/null
cp -f "$tmp/almost.bash" "$out/almost"
cp -f "$tmp/_almost" "$out/_almost"
cp -f "$tmp/almost.fish" "$out/almost.fish"
