#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Checks the built Debian packages (build-aux/build-debs.sh) without
# installing them: dpkg-deb is the oracle. What it checks, each a line
# `deb: ok|FAIL <what>`:
# - almost depends on nothing but libc (it must install on a minimal
#   Debian 12 system: no GTK, no GLib); almost-panel depends on exactly
#   this version of almost, and on pkexec;
# - each package holds its files and not the other's (the command, units,
#   policy, apt hook, config, man pages, completions in almost; the window,
#   desktop file, metainfo, icons, translations in almost-panel);
# - the config and the apt hook are conffiles;
# - the maintainer scripts enable almost-boot.service but never start or
#   restart it (installing locks nothing), the prerm runs
#   `almost package-remove`, the preinst the guard, the postrm purges
#   /var/lib/almost.
# The booted guest (tests/vm/) installs, upgrades and removes them for real.
# Usage: check-debs.sh DEBDIR
set -euo pipefail

dir=${1:?usage: check-debs.sh DEBDIR}
failures=0
check() {
    local what=$1
    shift
    if "$@"; then
        printf 'deb: ok   %s\n' "$what"
    else
        printf 'deb: FAIL %s\n' "$what"
        failures=$((failures + 1))
    fi
}

one() {
    local found
    found=$(find "$dir" -maxdepth 1 -name "$1_*_*.deb" | sort | tail -n1)
    [[ -n $found ]] || { echo "no $1 package in $dir" >&2; exit 1; }
    printf '%s\n' "$found"
}
almost=$(one almost)
panel=$(one almost-panel)
version=$(dpkg-deb -f "$almost" Version)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dpkg-deb -c "$almost" | awk '{print $6}' | sed 's|^\./|/|' >"$work/almost.list"
dpkg-deb -c "$panel" | awk '{print $6}' | sed 's|^\./|/|' >"$work/panel.list"
dpkg-deb -e "$almost" "$work/almost.ctl"

# Depends: package names only, versions and alternatives aside.
dep_names() { dpkg-deb -f "$1" Depends | tr ',|' '\n\n' | sed 's/(.*//; s/[[:space:]]//g; /^$/d' | sort -u; }
only_libc() { [[ -z $(dep_names "$almost" | grep -vx -e libc6 -e libgcc-s1) ]]; }
check "almost depends on libc only ($(dep_names "$almost" | tr '\n' ' '))" only_libc
check "almost-panel depends on almost (= $version)" \
    grep -qF "almost (= $version)" <<<"$(dpkg-deb -f "$panel" Depends)"
check "almost-panel depends on pkexec" grep -qw pkexec <<<"$(dep_names "$panel")"

has() { grep -qx -- "$2" "$work/$1.list"; }
for f in /usr/bin/almost /lib/systemd/system/almost-boot.service \
    /lib/systemd/system/almost-offline-update.service \
    /usr/share/polkit-1/actions/org.almost.policy /etc/apt/apt.conf.d/80almost \
    /etc/almost/almost.toml /usr/share/man/man1/almost.1.gz \
    /usr/share/man/man1/almost-lock.1.gz /usr/share/bash-completion/completions/almost; do
    check "almost ships $f" has almost "$f"
done
for f in /usr/bin/almost-panel /usr/share/applications/org.almost.Panel.desktop \
    /usr/share/metainfo/org.almost.Panel.metainfo.xml \
    /usr/share/icons/hicolor/scalable/apps/org.almost.Panel.svg \
    /usr/share/locale/de/LC_MESSAGES/almost.mo /usr/share/locale/es/LC_MESSAGES/almost.mo \
    /usr/share/locale/fr/LC_MESSAGES/almost.mo /usr/share/man/man1/almost-panel.1.gz; do
    check "almost-panel ships $f" has panel "$f"
done
no_overlap() {
    [[ -z $(comm -12 <(grep -v '/$' "$work/almost.list" | sort) <(grep -v '/$' "$work/panel.list" | sort)) ]]
}
check "no file is in both packages" no_overlap
no_gui_in_almost() { ! grep -qE 'almost-panel|/applications/|/metainfo/|/locale/' "$work/almost.list"; }
check "almost holds nothing of the panel" no_gui_in_almost

conffile() { grep -qx -- "$1" "$work/almost.ctl/conffiles"; }
check "the config is a conffile" conffile /etc/almost/almost.toml
check "the apt hook is a conffile" conffile /etc/apt/apt.conf.d/80almost

postinst="$work/almost.ctl/postinst"
check "postinst enables almost-boot.service" \
    grep -qE "deb-systemd-helper enable '?almost-boot\.service" "$postinst"
never_started() { ! grep -E 'deb-systemd-invoke' "$postinst" | grep -q 'almost-boot'; }
check "postinst never starts or restarts almost-boot.service" never_started
check "prerm runs almost package-remove" grep -q 'almost package-remove' "$work/almost.ctl/prerm"
check "preinst runs the guard" grep -q 'almost apt-guard' "$work/almost.ctl/preinst"
check "postrm purges /var/lib/almost" grep -q 'rm -rf /var/lib/almost' "$work/almost.ctl/postrm"

# The control: a check that cannot fail is worth nothing.
if ! has almost /usr/bin/almost-panel && has panel /usr/bin/almost-panel; then :; else
    echo "deb: FAIL control: the file lists are wrong" && failures=$((failures + 1))
fi

if ((failures)); then
    echo "deb: $failures checks failed"
    exit 1
fi
echo "deb: every check passed"
