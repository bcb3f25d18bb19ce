#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Runs the xtask of meson's cargo build (data/meson.build): the path is an
# argument, not the command, because the xtask does not exist yet when
# meson configures a fresh build directory.
#   xtask-generate.sh XTASK man DIR           almost.1 and the subcommand pages in DIR
#   xtask-generate.sh XTASK completions DIR   almost (bash), _almost, almost.fish in DIR
set -eu
xtask=$1 what=$2 out=$3
case $what in
man)
    "$xtask" man "$out" >/dev/null
    ;;
completions)
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    "$xtask" completions "$tmp" >/dev/null
    # bash-completion looks the file up by the command's name
    cp -f "$tmp/almost.bash" "$out/almost"
    cp -f "$tmp/_almost" "$out/_almost"
    cp -f "$tmp/almost.fish" "$out/almost.fish"
    ;;
*)
    echo "xtask-generate.sh: unknown $what" >&2
    exit 2
    ;;
esac
