#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Shell functions of the VM rig's guest side (sourced by stage.sh and the
# test updater, inside the Debian 12 guest, never on the host): result lines
# for the host, the checks the scenarios share (every managed entry has the
# immutable flag, none has it, a manifest of a tree), and small helpers.
#
# Result lines go to stdout, which the units send to the second serial port
# (/dev/ttyS1); the host reads them:
#   VMT PASS <id>: <what was checked>
#   VMT FAIL <id>: <what was checked>     (followed by "  | " lines: evidence)
#   VMT INFO <id>: <a figure or a fact>
#   VMT MARK <name>                       (a point in time the host waits for)
#   VMT END <stage>                       (the stage ran to its end)

VM_DIR=/root/vm         # scripts, packages, debs (written by the host)
VM_STATE=/root/vm/state # what a stage leaves for the next boot's stage
mkdir -p "$VM_STATE"

vmt() { printf 'VMT %s\n' "$*"; }
vm_info() { vmt "INFO $1: ${*:2}"; }
vm_mark() {
    sync
    vmt "MARK $1"
}

# vm_pass ID DESCRIPTION / vm_fail ID DESCRIPTION [EVIDENCE-FILE]
vm_pass() { vmt "PASS $1: $2"; }
vm_fail() {
    vmt "FAIL $1: $2"
    if [[ -n ${3:-} && -s $3 ]]; then
        head -n 30 "$3" | sed 's/^/  | /'
    fi
    return 0
}

# check ID DESCRIPTION COMMAND...: passes when COMMAND succeeds; its output is
# the evidence when it fails.
check() {
    local id=$1 desc=$2 out t0=$SECONDS
    shift 2
    out=$(mktemp)
    if "$@" >"$out" 2>&1; then
        vm_pass "$id" "$desc"
    else
        echo "(status $?: $*)" >>"$out"
        vm_fail "$id" "$desc" "$out"
    fi
    rm -f "$out"
    ((SECONDS - t0 < 5)) || vm_info "$id" "took $((SECONDS - t0)) s"
}

# check_not ID DESCRIPTION COMMAND...: passes when COMMAND fails.
check_not() {
    local id=$1 desc=$2 out
    shift 2
    out=$(mktemp)
    if "$@" >"$out" 2>&1; then
        echo "(succeeded: $*)" >>"$out"
        vm_fail "$id" "$desc" "$out"
    else
        vm_pass "$id" "$desc"
    fi
    rm -f "$out"
}

# The managed trees and the excluded paths, as the installed almost's
# configuration says (one per line).
managed_paths() { almost config get paths | tr -d '[]",' | tr ' ' '\n' | sed '/^$/d'; }
excluded_paths() { almost config get exclude | tr -d '[]",' | tr ' ' '\n' | sed '/^$/d'; }

# The regular files and directories of the managed trees, excluded ones
# left out (symlinks, devices, fifos and sockets cannot carry the flag).
flaggable_entries() {
    local -a prune=() p
    for p in $(excluded_paths); do
        prune+=(-path "$p" -prune -o)
    done
    # shellcheck disable=SC2046 # one word per path, none has spaces
    find $(managed_paths) -xdev "${prune[@]}" \( -type f -o -type d \) -print | LC_ALL=C sort
}

# lsattr -R of the managed trees (and the trees themselves) as "FLAGS PATH".
flags_of_trees() {
    local p
    # shellcheck disable=SC2046
    {
        lsattr -d $(managed_paths)
        lsattr -R $(managed_paths)
    } 2>/dev/null | sed -n 's/^\([-a-zA-Z]\+\) \(\/.*\)$/\1 \2/p'
}

# One walk of the managed trees, kept for the checks below (a full walk
# costs 8-13 s on the emulated CPU): the flags (lsattr -R) in FILE.flags and
# the flaggable entries (find) in FILE.all.
snapshot_trees() {
    flags_of_trees >"$1.flags"
    flaggable_entries >"$1.all"
}

# all_locked_in SNAPSHOT: fails (listing them) if some flaggable managed
# entry of the snapshot lacks the flag.
all_locked_in() {
    local snap=$1 missing total
    awk '$1 ~ /i/ {print substr($0, index($0, " ") + 1)}' "$snap.flags" | LC_ALL=C sort -u >"$snap.i"
    missing=$(LC_ALL=C comm -23 "$snap.all" "$snap.i" | wc -l)
    total=$(wc -l <"$snap.all")
    echo "$total flaggable entries, $missing without the immutable flag"
    LC_ALL=C comm -23 "$snap.all" "$snap.i" | head -n 10
    rm -f "$snap.i"
    ((total > 1000 && missing == 0))
}

# none_locked_in SNAPSHOT: fails (listing them) if some entry has the flag.
none_locked_in() {
    local found
    found=$(awk '$1 ~ /i/' "$1.flags")
    if [[ -n $found ]]; then
        echo "$(wc -l <<<"$found") entries have the immutable flag:"
        head -n 10 <<<"$found"
        return 1
    fi
    echo "no entry of the $(wc -l <"$1.flags") listed has the immutable flag"
    (($(wc -l <"$1.flags") > 1000))
}

# Fails (listing them) if some flaggable managed entry lacks the flag (a
# full walk).
all_locked() {
    snapshot_trees "$VM_STATE/.snap"
    all_locked_in "$VM_STATE/.snap"
}

# Fails (listing them) if some entry under DIR... (default /usr) has the flag.
none_locked() {
    local -a dirs=("$@")
    ((${#dirs[@]})) || dirs=(/usr)
    local found
    found=$({
        lsattr -d "${dirs[@]}"
        lsattr -R "${dirs[@]}"
    } 2>/dev/null | sed -n 's/^\([-a-zA-Z]\+\) \(\/.*\)$/\1 \2/p' | awk '$1 ~ /i/')
    if [[ -n $found ]]; then
        echo "$(wc -l <<<"$found") entries still have the immutable flag:"
        head -n 10 <<<"$found"
        return 1
    fi
    echo "no entry of ${dirs[*]} has the immutable flag"
}

# almost status --json, counted: prints "mode locked unlocked interrupted"
# (the mode, the entries almost counts as locked and as unlocked over every
# managed path, whether a commit is left interrupted). One walk by almost,
# cheaper than find + lsattr.
status_counts() {
    local js mode locked unlocked interrupted
    js=$(almost status --json 2>/dev/null | tr -d ' \n')
    mode=$(grep -o '"mode":"[a-z]*"' <<<"$js" | head -n 1 | cut -d'"' -f4)
    locked=$(grep -o '"locked":[0-9]*' <<<"$js" | cut -d: -f2 | awk '{s += $1} END {print s + 0}')
    unlocked=$(grep -o '"unlocked":[0-9]*' <<<"$js" | cut -d: -f2 | awk '{s += $1} END {print s + 0}')
    interrupted=no
    grep -q '"interrupted_commit":"' <<<"$js" && interrupted=yes
    echo "${mode:-?} $locked $unlocked $interrupted"
}

# by_status MODE: almost status --json says MODE (locked or unlocked),
# counts more than 1000 entries that way and none the other, and no
# interrupted commit.
by_status() {
    local c want=$1 mode locked unlocked interrupted this other
    c=$(status_counts)
    echo "almost status --json: mode, locked, unlocked, interrupted commit: $c"
    read -r mode locked unlocked interrupted <<<"$c"
    this=$locked other=$unlocked
    [[ $want == unlocked ]] && this=$unlocked other=$locked
    [[ $mode == "$want" && $this -gt 1000 && $other -eq 0 && $interrupted == no ]]
}
locked_by_status() { by_status locked; }
unlocked_by_status() { by_status unlocked; }

# Every path given has the flag.
have_flag() {
    local p rc=0
    for p in "$@"; do
        lsattr -d "$p" | awk '$1 ~ /i/ {f = 1} END {exit !f}' || {
            lsattr -d "$p"
            rc=1
        }
    done
    return "$rc"
}

# almost status (text) names the mode.
status_is() {
    local want=$1 out
    out=$(almost status 2>&1)
    printf '%s\n' "$out"
    grep -qiw -- "$want" <<<"$(head -n 3 <<<"$out")"
}

# vm_manifest DIR [HASHED...]: one line per entry of DIR (type, mode, owner,
# then for regular files the size and the modification time in seconds,
# the path, the link target), the excluded paths left out; then the sha256
# of every regular file under the HASHED paths (where the scenarios change
# things: hashing all of /usr takes minutes on an emulated CPU, and a write
# anywhere else changes a size or a time). The same tree gives the same
# text, whatever its flags, ctimes and inode numbers. VM_MANIFEST_ROOT
# (default /) is where the tree is read: lower_manifest reads the root
# filesystem itself, beneath any layer mounted over DIR.
vm_manifest() {
    local dir=$1 p root=${VM_MANIFEST_ROOT:-}
    shift
    local -a prune=()
    for p in $(excluded_paths); do
        prune+=(-path ".$p" -prune -o)
    done
    (
        cd "${root:-/}" || exit 1
        # (No -xdev: a layer over a subdirectory is a mount inside DIR.)
        find ".$dir" "${prune[@]}" -printf '%y\t%m\t%U:%G\t%s\t%T@\t%p\t%l\n' |
            awk -F'\t' 'BEGIN {OFS = "\t"} $1 != "f" {$4 = "-"; $5 = "-"} $1 == "f" {sub(/\..*/, "", $5)} {sub(/^\./, "", $6); print}' |
            LC_ALL=C sort -t "$(printf '\t')" -k6
        local -a hashed=()
        for p in "$@"; do [[ -e .$p ]] && hashed+=(".$p"); done
        ((${#hashed[@]})) || exit 0
        find "${hashed[@]}" -type f -print0 | xargs -0 -r sha256sum | sed 's|  \./|  /|' | LC_ALL=C sort -k2
    )
}

# lower_manifest DIR [HASHED...]: vm_manifest of the root filesystem's own
# DIR, read through a non-recursive bind mount of / (a layer mounted over
# DIR is not in it): what a commit wrote, not the merged view of a layer.
lower_manifest() {
    mkdir -p /run/vm-lower
    export -f vm_manifest excluded_paths
    # In a mount namespace of its own: no other process sees the bind mount.
    unshare -m --propagation private bash -c \
        'mount --bind / /run/vm-lower && VM_MANIFEST_ROOT=/run/vm-lower vm_manifest "$@"' vm "$@"
}

# same_manifest A B: no difference (the first ones shown).
same_manifest() {
    if cmp -s "$1" "$2"; then
        echo "identical ($(wc -l <"$1") lines)"
        return 0
    fi
    diff "$1" "$2" | head -n 20
    return 1
}

# No unit has failed in this boot.
no_failed_units() {
    local failed
    failed=$(systemctl --failed --no-legend --plain)
    [[ -z $failed ]] && return 0
    printf '%s\n' "$failed"
    local u
    for u in $(awk '{print $1}' <<<"$failed"); do
        journalctl -b -u "$u" --no-pager -n 15 -o cat
    done
    return 1
}

# Waits until systemd has finished booting (so that systemd-analyze works).
wait_boot_finished() {
    local s
    s=$(timeout 300 systemctl is-system-running --wait 2>/dev/null || true)
    vm_info boot "system state: $s"
}

# The duration of a unit's start in this boot, as systemd-analyze blame
# computes it, in seconds.
unit_start_seconds() {
    local u=$1 a b
    a=$(systemctl show -P InactiveExitTimestampMonotonic "$u")
    b=$(systemctl show -P ActiveEnterTimestampMonotonic "$u")
    awk -v a="$a" -v b="$b" 'BEGIN {printf "%.3f\n", (b - a) / 1e6}'
}

# Seconds a command takes (wall clock): secs_of COMMAND...
secs_of() {
    local t0 t1
    t0=$EPOCHREALTIME
    "$@" >/dev/null 2>&1 || echo "(failed: $*)" >&2
    t1=$EPOCHREALTIME
    awk -v a="${t0/,/.}" -v b="${t1/,/.}" 'BEGIN {printf "%.3f\n", b - a}'
}

vm_end() {
    vmt "END $1"
    sync
    systemctl poweroff --no-block
    exit 0
}
