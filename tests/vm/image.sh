#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The base of the VM rig's Debian 12 guest: builds, once, a tarball of a
# minimal bookworm system with mmdebstrap (minbase plus systemd, the kernel,
# apt, dbus, polkit and what the scenarios use) from the machine's own apt
# sources, and caches it under /var/cache/almost-vm/ keyed by a hash of the
# package list and of this recipe. Installs mmdebstrap and qemu-system-x86
# with apt if they are missing (a fresh CI machine). Prints the tarball's
# path on its last line. Nothing of the machine's own system is changed
# except for those packages and the cache directory.
#
# Usage: sudo tests/vm/image.sh [--rebuild]
# Environment: ALMOST_VM_CACHE (default /var/cache/almost-vm).

set -euo pipefail

# shellcheck source=build-aux/sandbox.sh source-path=SCRIPTDIR/../..
. "$(dirname "${BASH_SOURCE[0]}")/../../build-aux/sandbox.sh"

VM_SUITE=bookworm
# What the guest is made of. Changing this list (or the recipe below) makes a
# new tarball; older ones are deleted.
VM_PACKAGES=(
    # boot: systemd as PID 1, Debian 12's own kernel and initramfs
    systemd-sysv linux-image-amd64 initramfs-tools udev kmod
    # what Almost's package runs with: apt, the system bus, polkit
    apt dbus polkitd pkexec
    # lsattr/chattr/e2fsck; man-db for a real dpkg trigger (scenario 2)
    e2fsprogs man-db
)
VM_CACHE=${ALMOST_VM_CACHE:-/var/cache/almost-vm}

# The initramfs carries only what a virtio disk with ext4 needs: a much
# smaller initrd that the emulated CPU unpacks in a fraction of the time.
# (A customize hook: after every package is in, so the conffile is ours to
# change, and mmdebstrap has mounted /proc, /sys and /dev in the chroot.)
vm_initramfs_hook() {
    local root=$1
    printf 'MODULES=list\n' >"$root/etc/initramfs-tools/conf.d/almost-vm.conf"
    printf '%s\n' virtio_pci virtio_blk ext4 crc32c_generic >>"$root/etc/initramfs-tools/modules"
    chroot "$root" update-initramfs -u -k all
}

# The key of the cache: the suite, the packages, the recipe.
vm_image_key() {
    {
        printf '%s\n' "$VM_SUITE" "${VM_PACKAGES[@]}"
        declare -f vm_initramfs_hook
        echo recipe-1
    } | sha256sum | cut -c1-16
}

vm_install_tools() {
    local -a missing=()
    local pkg status
    for pkg in mmdebstrap qemu-system-x86 e2fsprogs; do
        status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
        [[ $status == "install ok installed" ]] || missing+=("$pkg")
    done
    ((${#missing[@]})) || return 0
    sb_info "image: installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 -q update >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -q \
        --no-install-recommends "${missing[@]}" >/dev/null
}

# Prints the path of the cached tarball, building it first if needed.
vm_base_tarball() {
    local rebuild=${1:-}
    local key tar tmp
    key=$(vm_image_key)
    tar="$VM_CACHE/debian12-$key.tar"
    if [[ -s $tar && -z $rebuild ]]; then
        printf '%s\n' "$tar"
        return 0
    fi
    vm_install_tools
    mkdir -p "$VM_CACHE"
    # Two runs building at once must not write the same file.
    exec 9>"$VM_CACHE/.lock"
    flock 9
    if [[ -s $tar && -z $rebuild ]]; then
        exec 9>&-
        printf '%s\n' "$tar"
        return 0
    fi
    tmp="$VM_CACHE/building-$key-$$.tar" # mmdebstrap picks the format from .tar
    sb_info "image: building the Debian 12 base ($VM_SUITE; about 2 minutes, once) -> $tar" >&2
    local include
    include=$(
        IFS=,
        echo "${VM_PACKAGES[*]}"
    )
    if ! mmdebstrap --quiet --variant=minbase --include="$include" \
        --customize-hook="$(declare -f vm_initramfs_hook); vm_initramfs_hook \"\$1\"" \
        "$VM_SUITE" "$tmp" >&2; then
        rm -f "$tmp"
        sb_die "mmdebstrap failed"
    fi
    mv "$tmp" "$tar"
    # Older recipes are of no use any more.
    find "$VM_CACHE" -maxdepth 1 -name 'debian12-*.tar' ! -name "debian12-$key.tar" -delete
    exec 9>&-
    printf '%s\n' "$tar"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    sb_require_root "$@"
    case ${1:-} in
    --rebuild) vm_base_tarball rebuild ;;
    '') vm_base_tarball ;;
    *) sb_die "usage: $0 [--rebuild]" ;;
    esac
fi
