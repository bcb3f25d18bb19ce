#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Checks data/almost.toml with the built almost, in a temporary --root:
# as shipped (everything commented out) it gives the built-in defaults; with
# its commented settings uncommented it is still valid and names the same
# default_mode; a deliberately broken copy is refused (exit 4, bad config).
# Usage: check-default-config.sh ALMOST CONFIG
set -eu
almost=$1 config=$2
root=$(mktemp -d "${TMPDIR:-/tmp}/almost-config.XXXXXX")
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/etc/almost" "$root/usr" "$root/opt"
show() { "$almost" --root "$root" config show; }

cp "$config" "$root/etc/almost/almost.toml"
shipped=$(show)
rm "$root/etc/almost/almost.toml"
defaults=$(show)
if [ "$shipped" != "$defaults" ]; then
    printf 'the shipped config is not the defaults:\n%s\n---\n%s\n' "$shipped" "$defaults" >&2
    exit 1
fi

sed -E 's/^#([a-z_]+ = )/\1/' "$config" >"$root/etc/almost/almost.toml"
grep -q '^default_mode = ' "$root/etc/almost/almost.toml" || {
    echo "no commented default_mode setting" >&2
    exit 1
}
uncommented=$(show)
want=$(printf '%s\n' "$defaults" | grep '^default_mode = ')
printf '%s\n' "$uncommented" | grep -qxF "$want" || {
    printf 'the commented default_mode is not the default (%s):\n%s\n' "$want" "$uncommented" >&2
    exit 1
}

sed -i 's/^default_mode = .*/default_mode = "lockd"/' "$root/etc/almost/almost.toml"
rc=0
show >/dev/null 2>&1 || rc=$?
if [ $rc -ne 4 ]; then
    echo "control: a broken config gave exit $rc, not 4" >&2
    exit 1
fi
echo "data/almost.toml: the defaults, and valid uncommented"
