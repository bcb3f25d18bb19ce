#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The selective commit's figure (issue 15), not a test: in an ext4 loop image
# inside a private mount namespace, a managed tree /opt/commit of --files
# 8 KiB files (100 to a directory), locked; each round makes a layer over it,
# rewrites every file through the layer, and times
#   almost layer commit --yes ID --only /opt/commit/d0 … (--selected files:
#   whole directories of 100),
# then, on the rest, a whole commit of the others (to compare with), and the
# selected files done by hand (cp -a + sync -f + chattr -R +i of the same
# directories). Prints the medians. Everything it makes is removed at the end.
#
# Usage: sudo build-aux/bench-select.sh [--files N] [--selected N] [--runs N]
#                                        [--almost FILE]
# (defaults 10000, 1000, 3; --almost: the binary to time, else a release
# build of this checkout is made with cargo).
set -euo pipefail
# shellcheck source=build-aux/sandbox.sh source-path=SCRIPTDIR/..
. "$(dirname "${BASH_SOURCE[0]}")/sandbox.sh"

files=10000 selected=1000 runs=3 almost=''
args=("$@")
while (($#)); do
    case $1 in
    --files) files=${2:?}; shift 2 ;;
    --selected) selected=${2:?}; shift 2 ;;
    --runs) runs=${2:?}; shift 2 ;;
    --almost) almost=${2:?}; shift 2 ;;
    *) sb_die "unknown option: $1" ;;
    esac
done
[[ $files =~ ^[0-9]+$ && $selected =~ ^[0-9]+$ && $runs =~ ^[0-9]+$ ]] || sb_die "numbers only"
((files % 100 == 0 && selected % 100 == 0 && selected > 0 && selected < files && runs > 0)) ||
    sb_die "--files and --selected must be multiples of 100, 0 < selected < files"
sb_require_root "${args[@]}"
sb_enter_private_ns "${args[@]}"

if [[ -z $almost ]]; then
    sb_section "cargo build --release -p almost-helper"
    sb_need_cargo
    (cd "$SB_SRC_DIR" && cargo build --release -q -p almost-helper)
    almost=${CARGO_TARGET_DIR:-$SB_SRC_DIR/target}/release/almost
fi
[[ -x $almost ]] || sb_die "$almost is not an executable file"
export ALMOST_BIN=$almost # read by sb_almost

# The tree, the layer's copy, the by-hand copy and the undo data (twice
# while a commit hands it over), 8 KiB each, and room for the rest.
size_mib=$((files * 8 * 6 / 1024 + 256))
sb_create bench-select "$size_mib" $((files * 8 + 4096))
R=$SB_ROOT
CT=/opt/commit
mkdir -p "$R/etc/almost" "$R$CT"
cat >"$R/etc/almost/almost.toml" <<'TOML'
default_mode = "keep"
paths = ["/opt/commit"]
TOML
tmp=$SB_DIR

# write DIR ROUND FIRST COUNT: ROUND's content in files FIRST.. of DIR.
write() {
    sb_assert_sandbox
    python3 - "$@" <<'PYEOF'
import os, sys
top, rnd, first, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
for k in range(first, first + n):
    d = os.path.join(top, "d%d" % (k // 100))
    os.makedirs(d, exist_ok=True)
    line = ("round %s file %d\n" % (rnd, k)).encode()
    data = (line * (8192 // len(line) + 1))[:8192]
    fd = os.open(os.path.join(d, "f%d" % k), os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    os.pwrite(fd, data, 0)
    os.close(fd)
PYEOF
}
quiesce() { sync; echo 1 >/proc/sys/vm/drop_caches 2>/dev/null || true; sleep 1; }
# timed VAR CMD...: appends CMD's wall time to the array VAR.
timed() {
    local -n into=$1
    shift
    quiesce
    sb_assert_sandbox
    local t0=$EPOCHREALTIME
    "$@" >"$tmp/out" 2>"$tmp/err" || sb_die "$* failed: $(head -c 400 "$tmp/err")"
    into+=("$(awk -v a="${t0/,/.}" -v b="${EPOCHREALTIME/,/.}" 'BEGIN { printf "%.3f", b - a }')")
}
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

write "$R$CT" 0 0 "$files"
sync -f "$R"
sb_almost lock >/dev/null
only=()
for ((d = 0; d < selected / 100; d++)); do only+=("$CT/d$d"); done
declare -a SEL=() REST=() HAND=()
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for ((round = 1; round <= runs; round++)); do
    sb_section "round $round of $runs"
    sb_almost layer new "$CT" >"$tmp/out"
    id=$(tail -n 1 "$tmp/out")
    write "$R$CT" "a$round" 0 "$files"
    timed SEL sb_almost --json layer commit --yes "$id" --only "${only[@]}"
    grep -q "\"selected\":$selected," "$tmp/out" ||
        sb_die "the selective commit did not take $selected files: $(tail -c 400 "$tmp/out")"
    timed REST sb_almost layer commit --yes "$id"
    rm -rf "$R/var/tmp/copy"
    write "$R/var/tmp/copy" "h$round" 0 "$selected"
    chattr -R -i "$R$CT"
    # shellcheck disable=SC2016 # expanded by that bash
    timed HAND bash -c 'cp -a "$1/." "$2/" && sync -f "$2" && for d in "${@:3}"; do chattr -R +i "$2/${d##*/}"; done' \
        by-hand "$R/var/tmp/copy" "$R$CT" "${only[@]}"
    chattr -R +i "$R$CT"
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
printf '\n%s of %s changed 8 KiB files, %s rounds (load %s -> %s):\n' "$selected" "$files" "$runs" "$load_before" "$load_after"
printf '  %-52s %s-> median %s s\n' "layer commit --only (${#only[@]} directories)" "${SEL[*]} " "$(median "${SEL[@]}")"
printf '  %-52s %s-> median %s s\n' "then layer commit of the other $((files - selected))" "${REST[*]} " "$(median "${REST[@]}")"
printf '  %-52s %s-> median %s s\n' "by hand: cp -a + sync -f + chattr -R +i of $selected" "${HAND[*]} " "$(median "${HAND[@]}")"
