#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Shell functions shared by the scripts in build-aux/: messages, the root
# check, finding cargo, re-running a script inside a private mount namespace,
# and a throwaway ext4 loop image that `almost --root` is pointed at, so that
# nothing of the machine's own system is ever locked.
#
# Source it (`. build-aux/sandbox.sh`); running it on its own does nothing.
#
# shellcheck disable=SC2034 # the SB_* variables are used by the scripts that source this

set -euo pipefail

# The top of the source tree (the directory holding Cargo.toml).
SB_SRC_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

if [[ -t 1 && -z ${NO_COLOR:-} ]]; then
    SB_BOLD=$'\e[1m' SB_DIM=$'\e[2m' SB_RED=$'\e[31m' SB_GREEN=$'\e[32m' SB_RESET=$'\e[0m'
else
    SB_BOLD='' SB_DIM='' SB_RED='' SB_GREEN='' SB_RESET=''
fi

sb_prog=$(basename "$0")

sb_info() { printf '%s\n' "$*"; }
sb_warn() { printf '%s%s: warning:%s %s\n' "$SB_RED" "$sb_prog" "$SB_RESET" "$*" >&2; }
sb_die() {
    printf '%s%s: error:%s %s\n' "$SB_RED" "$sb_prog" "$SB_RESET" "$*" >&2
    exit 1
}
# Each heading says how long the script has run (the time each part takes is
# the difference between two headings).
sb_section() { printf '\n%s==> %s%s [%d s]\n' "$SB_BOLD" "$*" "$SB_RESET" "$SECONDS"; }

sb_require_root() {
    if [[ $EUID -ne 0 ]]; then
        sb_die "this needs root; run: sudo $0${*:+ $*}"
    fi
}

# Puts cargo on PATH. Under sudo, secure_path usually hides the invoking
# user's ~/.cargo/bin: look there too, and let rustup find that user's
# toolchains.
sb_find_cargo() {
    command -v cargo >/dev/null 2>&1 && return 0
    local home dir
    for home in "${HOME:-/root}" /root; do
        if [[ -x $home/.cargo/bin/cargo ]]; then
            PATH="$home/.cargo/bin:$PATH"
            export PATH
            return 0
        fi
    done
    if [[ -n ${SUDO_USER:-} && $SUDO_USER != root ]]; then
        home=$(getent passwd "$SUDO_USER" | cut -d: -f6)
        dir="$home/.cargo/bin"
        if [[ -n $home && -x $dir/cargo ]]; then
            PATH="$dir:$PATH"
            export PATH
            if [[ -z ${RUSTUP_HOME:-} && -d $home/.rustup ]]; then
                RUSTUP_HOME="$home/.rustup"
                export RUSTUP_HOME
            fi
            return 0
        fi
    fi
    return 1
}

sb_need_cargo() {
    sb_find_cargo || sb_die "cargo not found. Install a current stable Rust toolchain with" \
        "rustup (https://rustup.rs), e.g. as root: curl -sSf https://sh.rustup.rs | sh -s -- -y;" \
        "Debian 12's own cargo is too old for this workspace."
}

# --- private mount namespace ---------------------------------------------

# Re-runs the calling script under `unshare -m --propagation private` unless
# it already runs in a namespace this function made. Mounts made afterwards
# are invisible to the rest of the machine and vanish when the script ends,
# whatever way it ends. Call it as: sb_enter_private_ns "$@"
sb_enter_private_ns() {
    local ns
    ns=$(readlink /proc/self/ns/mnt)
    # The token holds our PID (unchanged across exec) and the namespace we
    # came from, so a value inherited from some other process never matches.
    if [[ ${SB_NS_TOKEN:-} == "$$:"* && ${SB_NS_TOKEN#*:} != "$ns" ]]; then
        SB_PARENT_NS=${SB_NS_TOKEN#*:}
        unset SB_NS_TOKEN
        return 0
    fi
    command -v unshare >/dev/null || sb_die "unshare (util-linux) is missing"
    export SB_NS_TOKEN="$$:$ns"
    exec unshare --mount --propagation private -- "$BASH" "$(readlink -f "$0")" "$@"
}

# sb_wait_for_socket PATH PID: waits up to 10 s for the daemon PID to make
# the socket PATH; fails at once if PID dies first.
sb_wait_for_socket() {
    local path=$1 pid=$2
    for _ in $(seq 200); do
        [[ -S $path ]] && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.05
    done
    [[ -S $path ]]
}

# --- the sandbox image -----------------------------------------------------

SB_DIR=''  # temporary directory holding the image and the mount point
SB_IMG=''  # the ext4 image file
SB_ROOT='' # where the image is mounted: the --root given to almost

# sb_create NAME SIZE_MIB [INODES]
# Makes an ext4 image in a new temporary directory under $SB_TMPDIR, by
# default /var/tmp (not /tmp, which may be a tmpfs, in memory), and mounts it
# on $SB_DIR/root. Needs
# sb_enter_private_ns first. Registers the cleanup on EXIT.
# SB_JOURNAL_MIB, if set, is the size of the journal (else mke2fs picks one
# for the image's size); SB_LOOP_DIRECT_IO=1 has the loop device read and
# write the image with direct I/O, bypassing the page cache of the
# filesystem that holds it.
sb_create() {
    local name=$1 size_mib=$2 inodes=${3:-}
    [[ -n ${SB_PARENT_NS:-} ]] || sb_die "internal: sb_create outside the private namespace"
    local base=${SB_TMPDIR:-/var/tmp}
    SB_DIR=$(mktemp -d "$base/almost-$name.XXXXXX")
    trap sb_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    trap 'exit 129' HUP
    SB_IMG="$SB_DIR/fs.img"
    SB_ROOT="$SB_DIR/root"
    truncate -s "${size_mib}M" "$SB_IMG"
    # Inode tables and journal are written now, not by a background thread
    # after the mount (which would disturb the benchmark).
    local -a mkfs=(mkfs.ext4 -q -F -b 4096 -L "almost-$name" -E "lazy_itable_init=0,lazy_journal_init=0")
    [[ -n $inodes ]] && mkfs+=(-N "$inodes")
    [[ -n ${SB_JOURNAL_MIB:-} ]] && mkfs+=(-J "size=$SB_JOURNAL_MIB")
    "${mkfs[@]}" "$SB_IMG"
    mkdir "$SB_ROOT"
    if [[ -n ${SB_LOOP_DIRECT_IO:-} ]]; then
        local dev
        dev=$(losetup --find --show --direct-io=on "$SB_IMG")
        # The cleanup detaches it (losetup -j finds it by the image).
        mount "$dev" "$SB_ROOT"
    else
        mount -o loop "$SB_IMG" "$SB_ROOT"
    fi
    sb_assert_sandbox
}

# Dies unless $SB_ROOT is the loop-mounted image of this script, in this
# script's private namespace. Called before every command aimed at it.
# sb_demo_tree: fills $SB_ROOT with the demos' small fake system: a tool,
# a library and its symlink in /usr, an /opt app, a home directory and the
# configuration (Almost manages /usr and /opt, locked at boot).
sb_demo_tree() {
    local R=$SB_ROOT
    sb_assert_sandbox
    mkdir -p "$R"/usr/bin "$R"/usr/lib/demo "$R"/usr/share/doc/demo "$R"/opt/demo \
        "$R"/etc/almost "$R"/home/user
    printf '#!/bin/sh\necho "tool 1.0"\n' >"$R/usr/bin/tool"
    chmod 755 "$R/usr/bin/tool"
    ln -s tool "$R/usr/bin/tool-link"
    head -c 4096 /dev/urandom >"$R/usr/lib/demo/libdemo.so.1"
    ln -s libdemo.so.1 "$R/usr/lib/demo/libdemo.so"
    printf 'colour = "blue"\n' >"$R/opt/demo/app.conf"
    cat >"$R/etc/almost/almost.toml" <<'EOF'
# Almost's configuration in the demo sandbox (on a real system: /etc/almost/almost.toml).
# Mode applied at boot: "locked", "unlocked" or "keep"
default_mode = "locked"
# The trees Almost manages, as paths inside the root.
paths = ["/usr", "/opt"]
EOF
}

sb_assert_sandbox() {
    [[ -n $SB_ROOT && $SB_ROOT == /?*/?* ]] || sb_die "internal: no sandbox root"
    [[ $(readlink -f "$SB_ROOT") != / ]] || sb_die "internal: sandbox root is /"
    [[ -n ${SB_PARENT_NS:-} && $(readlink /proc/self/ns/mnt) != "$SB_PARENT_NS" ]] ||
        sb_die "internal: not in a private mount namespace"
    mountpoint -q "$SB_ROOT" || sb_die "internal: $SB_ROOT is not mounted"
    local src
    src=$(findmnt -n -o SOURCE --mountpoint "$SB_ROOT")
    [[ $src == /dev/loop* ]] || sb_die "internal: $SB_ROOT is mounted from $src, not a loop image"
}

# Runs almost against the sandbox only: sb_almost ARGS...
sb_almost() {
    sb_assert_sandbox
    "$ALMOST_BIN" --root "$SB_ROOT" "$@"
}

# Clears the flags, unmounts, detaches the loop device and deletes the files.
# Runs on EXIT, so also after an error or Ctrl-C. The namespace alone would
# drop the mount, but the flags are cleared first in any case so that no
# immutable file can ever be left behind.
sb_cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    set +e
    if [[ -n $SB_ROOT ]] && mountpoint -q "$SB_ROOT" 2>/dev/null; then
        # Layers (overlay mounts inside the root) first, deepest first.
        local m
        findmnt -rn -o TARGET | grep -F "$SB_ROOT/" | sort -r | while read -r m; do
            umount "$m" 2>/dev/null || umount -l "$m"
        done
        chattr -R -f -i "$SB_ROOT" 2>/dev/null
        umount "$SB_ROOT" 2>/dev/null || umount -l "$SB_ROOT"
    fi
    if [[ -n $SB_IMG && -e $SB_IMG ]]; then
        local dev
        for dev in $(losetup -n -O NAME -j "$SB_IMG" 2>/dev/null); do
            losetup -d "$dev"
        done
    fi
    if [[ -n $SB_DIR && -d $SB_DIR ]]; then
        chattr -R -f -i "$SB_DIR" 2>/dev/null
        # --one-file-system: never descend into a mount that is still there.
        rm -rf --one-file-system "$SB_DIR"
    fi
    exit "$rc"
}

# sb_start_xvfb DIR LOG: starts Xvfb on a free display and returns once a
# client can connect to it (-noreset: no server reset when a client leaves,
# during which new clients fail): the number is read from the -displayfd pipe (a
# whole line), then xdpyinfo must answer. Sets DISPLAY and SB_XVFB_PID.
# Tries twice.
sb_start_xvfb() {
    local dir=$1 log=$2 attempt n
    for attempt in 1 2; do
        rm -f "$dir/display"
        Xvfb -displayfd 5 -screen 0 1280x900x24 -nolisten tcp -noreset 5>"$dir/display" 2>>"$log" &
        SB_XVFB_PID=$!
        n=''
        for _ in $(seq 1 100); do
            if [[ -s $dir/display && $(wc -l <"$dir/display") -ge 1 ]]; then
                n=$(head -n1 "$dir/display")
                break
            fi
            kill -0 "$SB_XVFB_PID" 2>/dev/null || break
            sleep 0.05
        done
        if [[ $n =~ ^[0-9]+$ ]]; then
            for _ in $(seq 1 100); do
                if xdpyinfo -display ":$n" >/dev/null 2>&1; then
                    DISPLAY=":$n"
                    return 0
                fi
                sleep 0.05
            done
        fi
        kill "$SB_XVFB_PID" 2>/dev/null
        wait "$SB_XVFB_PID" 2>/dev/null
        sb_warn "Xvfb did not answer (attempt $attempt)"
    done
    return 1
}

# A number of seconds as text: sb_now gives the wall clock with microseconds.
sb_now() { printf '%s\n' "${EPOCHREALTIME/,/.}"; }

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    echo "sandbox.sh holds shell functions for the other build-aux scripts; source it." >&2
    exit 2
fi
