#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Installs what building, testing, the demo and the benchmark need on Debian 12:
# the Debian packages that are missing (nothing else is touched) and the
# rustfmt and clippy components, and, when no cargo is found (Debian 12's own
# is too old for edition 2024), a stable Rust toolchain with rustup in root's
# home (rustup-init from static.rust-lang.org, checked against its published
# SHA-256). Idempotent and quiet when all is there. Needs root.

set -euo pipefail

# shellcheck source=build-aux/sandbox.sh source-path=SCRIPTDIR/..
. "$(dirname "${BASH_SOURCE[0]}")/sandbox.sh"

packages=(
    # build, sandboxes, benchmark
    build-essential pkg-config e2fsprogs util-linux attr time dosfstools xfsprogs python3
    # system integration tests: private dbus-daemon, systemd-analyze verify
    # and a private systemd-journald (audit journal mode),
    # xmllint for the polkit policy, the real pkexec and polkitd (with its
    # agent helper and PAM, checking the GUI test's password), openssl for
    # that password's hash, apt/dpkg, man for the man page
    dbus systemd libxml2-utils pkexec polkitd libpam-modules openssl apt dpkg man-db
    # the GTK panel and its tests; meson, and the validators meson test runs
    # (desktop-file-validate, appstreamcli, msgfmt, xmllint above; polkitd
    # above also ships gettext's ITS rules for the polkit policy)
    libgtk-4-dev libadwaita-1-dev gettext meson ninja-build xvfb xauth dbus dbus-x11
    at-spi2-core python3-gi gir1.2-atspi-2.0 imagemagick x11-utils desktop-file-utils appstream
    fonts-cantarell adwaita-icon-theme librsvg2-common gsettings-desktop-schemas
    # the Debian packages (build-aux/build-debs.sh) and the booted guest
    # they are tested in (tests/vm/: its image, qemu)
    debhelper dpkg-dev fakeroot lintian libglib2.0-dev mmdebstrap qemu-system-x86
    # rustup-init's download, when there is no Rust toolchain yet
    curl ca-certificates
)

sb_require_root "$@"

missing=()
for pkg in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    [[ $status == "install ok installed" ]] || missing+=("$pkg")
done

if ((${#missing[@]})); then
    sb_info "install-deps: installing ${missing[*]}"
    log=$(mktemp)
    trap 'rm -f "$log"' EXIT
    apt=(apt-get -o DPkg::Lock::Timeout=900)
    if ! DEBIAN_FRONTEND=noninteractive "${apt[@]}" -q update >"$log" 2>&1 ||
        ! DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y --no-install-recommends \
            "${missing[@]}" >>"$log" 2>&1; then
        cat "$log" >&2
        sb_die "apt-get failed (output above)"
    fi
fi

# No Rust toolchain anywhere sb_find_cargo looks: rustup's stable one, with
# the components the tests use, in root's ~/.cargo and ~/.rustup.
if ! sb_find_cargo; then
    sb_info "install-deps: no cargo found, installing a stable Rust toolchain with rustup"
    url=https://static.rust-lang.org/rustup/dist/x86_64-unknown-linux-gnu/rustup-init
    [[ $(uname -m) == x86_64 ]] || url=${url/x86_64/$(uname -m)}
    dir=$(mktemp -d)
    if ! curl -sSfL --proto '=https' -o "$dir/rustup-init" "$url" ||
        ! curl -sSfL --proto '=https' -o "$dir/rustup-init.sha256" "$url.sha256" ||
        [[ $(sha256sum <"$dir/rustup-init" | cut -d' ' -f1) != "$(cut -d' ' -f1 "$dir/rustup-init.sha256")" ]]; then
        rm -rf "$dir"
        sb_die "could not download rustup-init from $url (or its checksum did not match)"
    fi
    chmod +x "$dir/rustup-init"
    HOME=/root "$dir/rustup-init" -y -q --no-modify-path --profile minimal \
        --default-toolchain stable -c rustfmt -c clippy ||
        { rm -rf "$dir"; sb_die "rustup-init failed"; }
    rm -rf "$dir"
fi
sb_need_cargo
for comp in rustfmt clippy; do
    sub=${comp/rustfmt/fmt}
    if ! cargo "$sub" --version >/dev/null 2>&1; then
        command -v rustup >/dev/null 2>&1 ||
            sb_die "cargo $sub is missing and there is no rustup to add the $comp component"
        sb_info "install-deps: adding the $comp component"
        rustup -q component add "$comp" || sb_die "rustup component add $comp failed"
    fi
done
