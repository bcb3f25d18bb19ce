#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The benchmark (sudo build-aux/bench.sh), not a test: builds a release
# `almost`, makes a tree of about 200,000 entries in an ext4 loop image inside
# a private mount namespace, and times almost's lock, unlock, re-lock and
# status against chattr -R and lsattr -R on the same tree, with warm caches.
# The image is set up like the disk of a real system rather than like a
# small file: by default its journal is the 256 MiB that mke2fs gives a
# 32 GiB root filesystem (mke2fs would give a 1.2 GiB image 32 MiB, which
# the 50 MiB of inode tables a lock dirties overflow, so every run would
# stall writing the journal back), and the loop device does direct I/O, so
# that writing the journal costs no page-cache copy and no writeback of the
# host's filesystem on the two CPUs being measured (a disk does that in
# hardware). --journal-mib 0 --loop-io buffered gives the small-file setup.
# Prints a table, says whether the targets are met, and saves the table in
# bench-out/. Everything it makes is removed at the end.
#
# Options: --entries N   size of the tree (files + directories + symlinks; 200000)
#          --runs N      rounds of timed runs; the median is reported (5)
#          --workdir DIR where the temporary image goes (/var/tmp)
#          --out DIR     where the table is saved (bench-out in the source tree)
#          --almost FILE benchmark this almost binary instead of building one
#          --journal-mib N  journal size; 0: what mke2fs picks for the image (256)
#          --loop-io direct|buffered  how the loop device writes the image (direct)
#          --commit-files N  files rewritten in the commit measurement (entries / 10)

set -euo pipefail

# shellcheck source=build-aux/sandbox.sh source-path=SCRIPTDIR/..
. "$(dirname "${BASH_SOURCE[0]}")/sandbox.sh"

entries=200000
runs=5
workdir=/var/tmp
outdir=''
almost=''
journal_mib=256
loop_io=direct
commit_files=''
args=("$@")
while (($#)); do
    case $1 in
    --entries) entries=${2:?--entries needs a number}; shift 2 ;;
    --runs) runs=${2:?--runs needs a number}; shift 2 ;;
    --workdir) workdir=${2:?--workdir needs a directory}; shift 2 ;;
    --out) outdir=${2:?--out needs a directory}; shift 2 ;;
    --almost) almost=${2:?--almost needs a file}; shift 2 ;;
    --journal-mib) journal_mib=${2:?--journal-mib needs a number}; shift 2 ;;
    --loop-io) loop_io=${2:?--loop-io needs direct or buffered}; shift 2 ;;
    --commit-files) commit_files=${2:?--commit-files needs a number}; shift 2 ;;
    -h | --help)
        sed -n '4,27s/^# \{0,1\}//p' "$0"
        exit 0
        ;;
    *) sb_die "unknown option: $1 (try --help)" ;;
    esac
done
if ! [[ $entries =~ ^[0-9]+$ ]] || ((entries < 100)); then
    sb_die "--entries must be a number >= 100"
fi
if ! [[ $runs =~ ^[0-9]+$ ]] || ((runs < 1)); then
    sb_die "--runs must be a number >= 1"
fi
if ! [[ $journal_mib =~ ^[0-9]+$ ]] || ((journal_mib != 0 && (journal_mib < 4 || journal_mib > 10240))); then
    sb_die "--journal-mib must be 0 (mke2fs's choice) or a number of MiB from 4 to 10240"
fi
[[ $loop_io == direct || $loop_io == buffered ]] || sb_die "--loop-io must be direct or buffered"
commit_files=${commit_files:-$((entries / 10))}
if ! [[ $commit_files =~ ^[0-9]+$ ]] || ((commit_files < 10)); then
    sb_die "--commit-files must be a number >= 10"
fi
[[ -d $workdir ]] || sb_die "--workdir $workdir is not a directory"
workdir=$(readlink -f "$workdir")
if [[ -n $almost ]]; then
    [[ -x $almost ]] || sb_die "--almost $almost is not an executable file"
    almost=$(readlink -f "$almost")
fi

sb_require_root "${args[@]}"
sb_enter_private_ns "${args[@]}"
cd "$SB_SRC_DIR"
outdir=${outdir:-$SB_SRC_DIR/bench-out}

bash build-aux/install-deps.sh
if [[ -n $almost ]]; then
    ALMOST_BIN=$almost
else
    sb_section "cargo build --release -p almost-helper"
    sb_need_cargo
    cargo build --release -p almost-helper
    ALMOST_BIN="$SB_SRC_DIR/target/release/almost"
fi
[[ -x $ALMOST_BIN ]] || sb_die "the build did not produce $ALMOST_BIN"
[[ -x /usr/bin/time ]] || sb_die "/usr/bin/time is missing (package time)"

# --- the tree ----------------------------------------------------------------

# About 10 entries per directory, like /usr: one in ten entries is a
# directory, one in twenty of the others a symlink, the rest small files
# (the generator below says how they are laid out).
dirs=$((entries / 10))
others=$((entries - dirs))
links=$((others / 20))
files=$((others - links))
# Every directory and file takes one 4 KiB block; leave room for the journal
# and metadata.
size_mib=$(((dirs + files) * 4 * 14 / 10 / 1024 + 160 + journal_mib))
# The commit measurement's 8 KiB files live at once in the tree, the
# layer's upper directory and the copy for the by-hand baseline, and the
# originals each of its commits replaced stay in the history (keep_commits,
# 10 by default: all the rounds'), with a directory per 100.
size_mib=$((size_mib + commit_files * 8 * (4 + runs) / 1024))
# mke2fs refuses a journal of more than half the filesystem.
((size_mib >= 2 * journal_mib + 64)) || size_mib=$((2 * journal_mib + 64))
inodes=$((entries + entries / 5 + 4096 + commit_files * (4 + runs)))

sb_section "making a tree of $entries entries in a ${size_mib} MiB ext4 image"
SB_TMPDIR=$workdir
SB_JOURNAL_MIB=
((journal_mib > 0)) && SB_JOURNAL_MIB=$journal_mib
SB_LOOP_DIRECT_IO=
[[ $loop_io == direct ]] && SB_LOOP_DIRECT_IO=1
sb_create bench "$size_mib" "$inodes"
R=$SB_ROOT
# What the image really got, for the report.
image_journal=$(dumpe2fs -h "$SB_IMG" 2>/dev/null | sed -n 's/^Total journal size: *//p')
image_dio=$(losetup -n -O DIO -j "$SB_IMG" | tr -d ' ')
if [[ $loop_io == direct && $image_dio != 1 ]]; then
    sb_warn "the loop device could not do direct I/O on $workdir: it uses the page cache"
fi
[[ $image_dio == 1 ]] && image_loop='direct I/O' || image_loop='buffered I/O'
mkdir -p "$R/etc/almost"
cat >"$R/etc/almost/almost.toml" <<'EOF'
# Benchmark sandbox: only /usr is managed.
default_mode = "keep"
paths = ["/usr"]
EOF

t0=$(sb_now)
sb_assert_sandbox
python3 - "$R/usr" "$dirs" "$files" "$links" <<'EOF'
# Makes a tree shaped like /usr: DIRS directories, FILES small files and
# LINKS symlinks to sibling files. bin is flat and large (1% of the files),
# share/doc holds 5% of the directories side by side (both get ext4's htree
# index, as on a real system); the other directories form a tree with 12
# subdirectories each under lib, share, include and libexec, and share the
# remaining files and symlinks evenly.
import os, sys
top, ndirs, nfiles, nlinks = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
os.mkdir(top)
bindir = os.path.join(top, "bin")
tree = [os.path.join(top, t) for t in ("lib", "share", "include", "libexec")]
doc = os.path.join(top, "share", "doc")
for p in [bindir] + tree + [doc]:
    os.mkdir(p)
made_dirs = 7
ndoc = max(0, min(ndirs // 20, ndirs - made_dirs))
docs = [os.path.join(doc, "pkg%d" % k) for k in range(ndoc)]
for p in docs:
    os.mkdir(p)
made_dirs += ndoc
ntop = len(tree)
for k in range(ntop, ntop + max(0, ndirs - made_dirs)):
    p = os.path.join(tree[(k - ntop) // 12], "d%d" % k)
    os.mkdir(p)
    tree.append(p)
made_dirs += len(tree) - ntop
flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC


def fill(path, nf, nl, salt):
    dfd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    for j in range(nf):
        fd = os.open("f%d" % j, flags, 0o644, dir_fd=dfd)
        os.write(fd, b"#" * (16 + (salt + j) % 200))
        os.close(fd)
    for j in range(nl):
        os.symlink("f%d" % (j % nf) if nf else "..", "l%d" % j, dir_fd=dfd)
    os.close(dfd)


nbin, nbinl = nfiles // 100, nlinks // 10
fill(bindir, nbin, nbinl, 0)
rest = docs + tree
nf, nl = nfiles - nbin, nlinks - nbinl
for i, p in enumerate(rest):
    fill(p, nf // len(rest) + (i < nf % len(rest)), nl // len(rest) + (i < nl % len(rest)), i)
print("%d directories, %d files, %d symlinks: %d entries"
      % (made_dirs, nfiles, nlinks, made_dirs + nfiles + nlinks))
EOF
t1=$(sb_now)
sync -f "$R"
printf 'made in %.1f s\n' "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')"

# --- measuring ---------------------------------------------------------------

tmp="$SB_DIR/measure"
mkdir "$tmp"
deep_dir=$(find "$R/usr" -mindepth 4 -type d -print -quit)
deep_file=$(find "$R/usr" -mindepth 5 -type f -print -quit)
[[ -n $deep_dir && -n $deep_file ]] || deep_dir=$R/usr/bin deep_file=$R/usr/bin
samples=("$R/usr" "$R/usr/bin" "$R/usr/share/doc" "$deep_dir" "$deep_file")

# Whether every sample entry has (locked) or lacks (unlocked) the flag,
# read with lsattr, independently of almost.
state_is() {
    local p a
    for p in "${samples[@]}"; do
        a=$(lsattr -d "$p" | cut -d' ' -f1)
        if [[ $1 == locked && $a != *i* ]] || [[ $1 == unlocked && $a == *i* ]]; then
            return 1
        fi
    done
}

# set_state locked|unlocked|any: puts the tree in the starting state of the
# next measurement, with almost if it can, with chattr otherwise.
set_state() {
    local want=$1
    [[ $want == any ]] && return 0
    sb_assert_sandbox
    if [[ $want == locked ]]; then
        "$ALMOST_BIN" --root "$R" lock >/dev/null 2>&1 || true
    else
        "$ALMOST_BIN" --root "$R" unlock --yes >/dev/null 2>&1 || true
    fi
    if ! state_is "$want"; then
        sb_warn "almost did not leave the tree $want; using chattr -R to get there"
        if [[ $want == locked ]]; then chattr -R -f +i "$R/usr" || true; else chattr -R -f -i "$R/usr" || true; fi
        state_is "$want" || sb_die "cannot put the tree in the $want state"
    fi
}

# chattr -R tries the symlinks it meets too, fails on each ("Operation not
# supported while reading flags on ...") and exits 1 after doing everything
# else: its normal result on a tree with symlinks, not a failure. On an
# already locked tree it also gets EPERM from ext4 when it writes the
# unchanged flags back on a directory with the htree index flag ('I'), and
# then does not descend into it: that run did less than a full walk, and the
# table marks it.
chattr_errors_ok() {
    local key=$1 err=$2
    [[ -s $err ]] || return 1
    grep -v -e 'Operation not supported while reading flags on' \
        -e 'Operation not permitted while setting flags on' "$err" | grep -q . && return 1
    if grep -q 'Operation not permitted while setting flags on' "$err"; then
        NOTE[$key]="*"
    fi
    return 0
}

declare -A T RSS FAIL NOTE TIMES
# quiesce: the filesystem synced and its journal emptied (a freeze writes
# every journalled block home; the thaw follows at once). Without it each
# run would start by writing back the 50 MiB or so of inode tables the run
# before it left in the journal, and the shorter the run, the larger the
# share of its time that takes.
quiesce() {
    sync -f "$R"
    if [[ -z ${NO_FREEZE:-} ]] && ! { fsfreeze --freeze "$R" && fsfreeze --unfreeze "$R"; }; then
        fsfreeze --unfreeze "$R" 2>/dev/null || true
        sb_warn "fsfreeze failed: runs now start with whatever the journal holds"
        NO_FREEZE=1
    fi
}

# measure_once KEY STATE CMD...: one timed run of CMD from STATE, with warm
# caches and the filesystem quiesced first; adds the wall time to TIMES[KEY]
# and keeps the highest peak RSS.
measure_once() {
    local key=$1 state=$2 t0 t1 rc r
    shift 2
    [[ -n ${FAIL[$key]:-} ]] && return 0
    set_state "$state"
    quiesce
    sb_assert_sandbox
    rc=0
    t0=$EPOCHREALTIME
    /usr/bin/time -f %M -o "$tmp/rss" "$@" >/dev/null 2>"$tmp/err" || rc=$?
    t1=$EPOCHREALTIME
    if ((rc == 1)) && [[ $1 == chattr ]] && chattr_errors_ok "$key" "$tmp/err"; then
        rc=0
    fi
    if ((rc != 0)); then
        FAIL[$key]="exit $rc"
        printf '  %-38s failed (exit %d): %s\n' "$key" "$rc" "$(head -c 300 "$tmp/err" | tr '\n' ' ')"
        return 0
    fi
    TIMES[$key]+="$(awk -v a="${t0/,/.}" -v b="${t1/,/.}" 'BEGIN { printf "%.4f", b - a }') "
    r=$(tail -n 1 "$tmp/rss")
    ((r > ${RSS[$key]:-0})) && RSS[$key]=$r
    return 0
}

A=("$ALMOST_BIN" --root "$R")
AI=("$ALMOST_BIN" --root "$R" --flag-interface ioctl)

# Each round runs every operation once, so that what else the machine does
# (other virtual machines, the kernel's writeback) falls on almost and on
# the baselines alike; the median of the rounds is reported.
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
sb_section "timing ($runs rounds of every operation, seconds of wall clock; caches warm)"
lsattr -R "$R/usr" >/dev/null 2>&1 || true # warm the caches
KEYS=()
# op KEY STATE CMD...: one run of an operation in this round.
op() {
    ((round == 1)) && KEYS+=("$1")
    measure_once "$@"
}
for ((round = 1; round <= runs; round++)); do
    printf '  round %d of %d\n' "$round" "$runs"
    op "almost lock" unlocked "${A[@]}" lock
    op "chattr -R +i" unlocked chattr -R +i "$R/usr"
    op "almost unlock" locked "${A[@]}" unlock --yes
    op "chattr -R -i" locked chattr -R -i "$R/usr"
    op "almost lock (already locked)" locked "${A[@]}" lock
    op "almost status" locked "${A[@]}" status
    op "lsattr -R" locked lsattr -R "$R/usr"
    op "chattr -R +i (already locked)" locked chattr -R +i "$R/usr"
    op "almost --flag-interface ioctl lock" unlocked "${AI[@]}" lock
    op "almost --flag-interface ioctl unlock" locked "${AI[@]}" unlock --yes
done
for key in "${KEYS[@]}"; do
    [[ -n ${FAIL[$key]:-} ]] && continue
    T[$key]=$(tr ' ' '\n' <<<"${TIMES[$key]}" | grep . | sort -g |
        awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
    printf '  %-38s %s -> median %s s\n' "$key" "${TIMES[$key]}" "${T[$key]}"
done

# --- a layer over the whole tree ----------------------------------------------

# Times what a layer costs on this tree: making it over a locked /usr (its
# flags are cleared beneath the mount), diffing up to 3,000 changes made through it,
# committing them (the tree is locked again at the end); and the disk its
# upper directory and the undo data of the commit take.
declare -A L
layer_step() {
    local key=$1 t0 t1
    shift
    sb_assert_sandbox
    t0=$EPOCHREALTIME
    if ! "$@" >"$tmp/out" 2>"$tmp/err"; then
        sb_warn "$key failed: $(head -c 300 "$tmp/err" | tr '\n' ' ')"
        return 1
    fi
    t1=$EPOCHREALTIME
    L[$key]=$(awk -v a="${t0/,/.}" -v b="${t1/,/.}" 'BEGIN { printf "%.3f", b - a }')
    printf '  %-38s %s s\n' "$key" "${L[$key]}"
}
sb_section "a layer over /usr: make it, change up to 3,000 entries through it, diff, commit"
set_state locked
sync -f "$R"
if layer_step "layer new /usr" "${A[@]}" layer new /usr; then
    layer_id=$(tail -n 1 "$tmp/out")
    changes=$(python3 - "$R/usr/lib" <<'EOF'
# Through the layer: 1,000 files get a line more, 1,000 are deleted, 1,000 new
# ones appear, spread over the lib tree (fewer on a small tree). Prints how
# many changes that made.
import os, sys
files = []
for top, dirs, names in os.walk(sys.argv[1]):
    dirs.sort()
    files += [os.path.join(top, n) for n in sorted(names) if n.startswith("f")]
    if len(files) >= 2000:
        break
for p in files[:1000]:
    with open(p, "a") as f:
        f.write("changed in the layer\n")
for p in files[1000:2000]:
    os.unlink(p)
for k, p in enumerate(files[:1000]):
    with open(os.path.join(os.path.dirname(p), "new%d" % k), "w") as f:
        f.write("new in the layer %d\n" % k)
print(2 * len(files[:1000]) + len(files[1000:2000]))
EOF
)
    sync -f "$R"
    layer_step "layer diff" "${A[@]}" --json layer diff "$layer_id" &&
        L[upper_kib]=$(du -sk "$R/var/lib/almost/layers/$layer_id/upper" | cut -f1)
    layer_step "layer commit (then re-lock /usr)" "${A[@]}" layer commit --yes "$layer_id" &&
        L[undo_kib]=$(du -sk "$R/var/lib/almost/commits/$layer_id" | cut -f1)
fi

# --- a commit of many changed files against doing it by hand ------------------

# A tree of its own, /opt/commit, managed alone while this runs (so that the
# figures are the commit's, not the size of /usr: a commit measures every
# managed path once to know whether to lock again, about an `almost status`,
# timed above): commit_files files of 8 KiB, 100 to a directory. Each round
# changes every one of them in the same way twice, and times:
#  - almost: over the locked tree a layer is made (its flags cleared beneath,
#    not timed), every file is rewritten through it (new content of the same
#    size, written in place at offset 0: the layer copies it up), then
#    `almost layer commit --yes` is timed: capture, plan, journal, backup,
#    writes, syncfs, verification, undo data, and the tree locked again;
#  - by hand: the same tree unlocked (chattr -R -i, not timed, as the layer
#    did), the same kind of new content made in a copy of the changed files
#    outside the tree (not timed, as the layer's copy-up), then timed:
#    `cp -a` of that copy over the tree (every changed file, with its
#    metadata), `sync -f` of the filesystem (the one syncfs a commit does)
#    and `chattr -R +i` of the tree.
# Each round's content differs from the last, so every file really changes.
# The times are medians over the rounds, with the filesystem quiesced before
# each timed run and caches warm.
CT=/opt/commit
declare -a CTIMES=() HTIMES=()
commit_note=''
# commit_files_write DIR ROUND: writes ROUND's content into the
# commit_files files below DIR (made if absent), 8 KiB each.
commit_files_write() {
    sb_assert_sandbox
    python3 - "$1" "$commit_files" "$2" <<'PYEOF'
import os, sys
top, n, rnd = sys.argv[1], int(sys.argv[2]), sys.argv[3]
for k in range(n):
    d = os.path.join(top, "d%d" % (k // 100))
    if k % 100 == 0:
        os.makedirs(d, exist_ok=True)
    line = ("round %s file %d\n" % (rnd, k)).encode()
    data = (line * (8192 // len(line) + 1))[:8192]
    fd = os.open(os.path.join(d, "f%d" % k), os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    os.pwrite(fd, data, 0)
    os.close(fd)
PYEOF
}
# commit_check ROUND WHAT: whether the last file of the tree holds ROUND's
# content and the tree is locked again (a run that did less is no figure).
commit_check() {
    local last=$((commit_files - 1))
    local f="$R$CT/d$((last / 100))/f$last"
    if ! head -c 64 "$f" | grep -q "^round $1 file $last\$" ||
        [[ $(lsattr -d "$R$CT" | cut -d' ' -f1) != *i* || $(lsattr "$f" | cut -d' ' -f1) != *i* ]]; then
        sb_warn "$2 of round $1 did not leave the new content in a locked tree"
        return 1
    fi
}
# commit_time VAR CMD...: one timed run, the filesystem quiesced first;
# appends the wall time to the array VAR.
commit_time() {
    local -n into=$1
    local t0 t1
    shift
    quiesce
    sb_assert_sandbox
    t0=$EPOCHREALTIME
    if ! "$@" >"$tmp/out" 2>"$tmp/err"; then
        sb_warn "$* failed: $(head -c 300 "$tmp/err" | tr '\n' ' ')"
        return 1
    fi
    t1=$EPOCHREALTIME
    into+=("$(awk -v a="${t0/,/.}" -v b="${t1/,/.}" 'BEGIN { printf "%.4f", b - a }')")
}
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

sb_section "a commit of $commit_files changed 8 KiB files against cp -a + sync + chattr -R +i ($runs rounds)"
cat >"$R/etc/almost/almost.toml" <<'TOML'
# Benchmark sandbox, the commit measurement: only /opt/commit is managed.
default_mode = "keep"
paths = ["/opt/commit"]
TOML
mkdir -p "$R$CT"
commit_files_write "$R$CT" 0
sync -f "$R"
"${A[@]}" lock >/dev/null 2>"$tmp/err" || sb_warn "almost lock of $CT failed: $(head -c 300 "$tmp/err")"
load_commit_before=$(cut -d' ' -f1-3 /proc/loadavg)
for ((round = 1; round <= runs; round++)); do
    printf '  round %d of %d\n' "$round" "$runs"
    sb_assert_sandbox
    if ! "${A[@]}" layer new "$CT" >"$tmp/out" 2>"$tmp/err"; then
        sb_warn "layer new $CT failed: $(head -c 300 "$tmp/err" | tr '\n' ' ')"
        commit_note=failed
        break
    fi
    cid=$(tail -n 1 "$tmp/out")
    commit_files_write "$R$CT" "a$round"
    if ! commit_time CTIMES "${A[@]}" layer commit --yes "$cid" || ! commit_check "a$round" "the commit"; then
        commit_note=failed
        break
    fi
    rm -rf "$R/var/tmp/commit-copy"
    chattr -R -i "$R$CT"
    commit_files_write "$R/var/tmp/commit-copy" "h$round"
    # shellcheck disable=SC2016 # expanded by that bash, from its arguments
    if ! commit_time HTIMES bash -c 'cp -a "$1/." "$2/" && sync -f "$2" && chattr -R +i "$2"' \
        by-hand "$R/var/tmp/commit-copy" "$R$CT" || ! commit_check "h$round" "by hand"; then
        commit_note=failed
        break
    fi
done
load_commit_after=$(cut -d' ' -f1-3 /proc/loadavg)
rm -rf "$R/var/tmp/commit-copy"
C_ALMOST=$(median "${CTIMES[@]}")
C_HAND=$(median "${HTIMES[@]}")
printf '  %-38s %s-> median %s s\n' "layer commit --yes" "${CTIMES[*]} " "${C_ALMOST:-n/a}"
printf '  %-38s %s-> median %s s\n' "cp -a + sync -f + chattr -R +i" "${HTIMES[*]} " "${C_HAND:-n/a}"
[[ -n $commit_note ]] && C_ALMOST='' C_HAND=''

# --- the table ----------------------------------------------------------------

secs() { if [[ -n ${T[$1]:-} ]]; then printf '%.3f%s' "${T[$1]}" "${NOTE[$1]:-}"; else printf '%s' "${FAIL[$1]:-n/a}"; fi; }
ratio() {
    if [[ -n ${T[$1]:-} && -n ${T[$2]:-} ]]; then
        awk -v a="${T[$1]}" -v b="${T[$2]}" 'BEGIN { printf "%.1fx", (a > 0 ? b / a : 0) }'
    else printf 'n/a'; fi
}
mib() { if [[ -n ${RSS[$1]:-} ]]; then awk -v k="${RSS[$1]}" 'BEGIN { printf "%.1f", k / 1024 }'; else printf 'n/a'; fi; }
# meets KEY BASELINE FACTOR: whether BASELINE took at least FACTOR times as long.
meets() {
    [[ -n ${T[$1]:-} && -n ${T[$2]:-} ]] || { printf 'NOT MET (no measurement)'; return; }
    awk -v a="${T[$1]}" -v b="${T[$2]}" -v f="$3" \
        'BEGIN { r = (a > 0 ? b / a : 0); printf "%s (%.1fx)", (r >= f ? "met" : "NOT MET"), r }'
}

rows=(
    # label | almost key | baseline label | baseline key
    "lock (unlocked tree)|almost lock|chattr -R +i|chattr -R +i"
    "unlock (locked tree)|almost unlock|chattr -R -i|chattr -R -i"
    "re-lock (already locked)|almost lock (already locked)|lsattr -R|lsattr -R"
    "re-lock (already locked)|almost lock (already locked)|chattr -R +i (locked)|chattr -R +i (already locked)"
    "status (locked tree)|almost status|lsattr -R|lsattr -R"
    "lock, ioctl fallback|almost --flag-interface ioctl lock|chattr -R +i|chattr -R +i"
    "unlock, ioctl fallback|almost --flag-interface ioctl unlock|chattr -R -i|chattr -R -i"
)

peak=0
for key in "${!RSS[@]}"; do
    [[ $key == almost* ]] && ((RSS[$key] > peak)) && peak=${RSS[$key]}
done

report() {
    local label akey blabel bkey
    printf 'almost benchmark, %s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
    printf 'tree: %s entries under /usr of an ext4 loop image (%s); Linux %s, %s CPUs\n' \
        "$entries" "$workdir" "$(uname -r)" "$(nproc)"
    printf 'image: %s MiB, journal %s, loop device with %s\n' "$size_mib" "${image_journal:-?}" "$image_loop"
    printf 'times: median of %s interleaved rounds, wall clock, caches warm, filesystem synced and journal emptied before each run\n' "$runs"
    printf 'load average before / after timing: %s / %s (other work on the machine skews the times)\n\n' \
        "$load_before" "$load_after"
    printf '%-26s %10s  %-22s %10s  %7s  %9s\n' operation "almost s" baseline "baseline s" ratio "peak MiB"
    printf '%-26s %10s  %-22s %10s  %7s  %9s\n' -------------------------- ---------- \
        ---------------------- ---------- ------- ---------
    for row in "${rows[@]}"; do
        IFS='|' read -r label akey blabel bkey <<<"$row"
        printf '%-26s %10s  %-22s %10s  %7s  %9s\n' "$label" "$(secs "$akey")" "$blabel" \
            "$(secs "$bkey")" "$(ratio "$akey" "$bkey")" "$(mib "$akey")"
    done
    printf '\nratio = baseline s / almost s\n'
    if [[ -n ${NOTE["chattr -R +i (already locked)"]:-} ]]; then
        printf '* chattr -R +i on the locked tree got EPERM writing the unchanged flags back on\n'
        printf '  indexed directories and did not descend into them: it did less than a full walk.\n'
    fi
    printf '\na layer over /usr (%s entries):\n' "$entries"
    printf '  %-41s: %s s\n' "layer new /usr (clears the flags beneath)" "${L[layer new /usr]:-failed}"
    printf '  %-41s: %s s\n' "layer diff, ${changes:-0} changes" "${L[layer diff]:-failed}"
    printf '  %-41s: %s s\n' "layer commit, ${changes:-0} changes + re-lock" \
        "${L[layer commit (then re-lock /usr)]:-failed}"
    printf '  disk: upper dir %s KiB, undo data %s KiB\n' "${L[upper_kib]:-?}" "${L[undo_kib]:-?}"
    printf '\na commit of %s changed 8 KiB files (rewritten, same size) in a tree of its own, locked\n' "$commit_files"
    printf 'before and after, median of %s rounds (load average before / after: %s / %s):\n' \
        "$runs" "${load_commit_before:-?}" "${load_commit_after:-?}"
    printf '  %-41s: %s s\n' "almost layer commit --yes (+ re-lock)" "${C_ALMOST:-failed}"
    printf '  %-41s: %s s\n' "by hand: cp -a, sync -f, chattr -R +i" "${C_HAND:-failed}"
    if [[ -n $C_ALMOST && -n $C_HAND ]]; then
        awk -v a="$C_ALMOST" -v b="$C_HAND" 'BEGIN { printf "  commit / by hand: %.2fx\n", (b > 0 ? a / b : 0) }'
    fi
    printf '\ntargets:\n'
    printf '  lock   >= 4x faster than chattr -R +i : %s\n' "$(meets "almost lock" "chattr -R +i" 4)"
    printf '  unlock >= 4x faster than chattr -R -i : %s\n' "$(meets "almost unlock" "chattr -R -i" 4)"
    printf '  re-lock >= 5x faster than lsattr -R   : %s\n' \
        "$(meets "almost lock (already locked)" "lsattr -R" 5)"
    printf '  status  >= 5x faster than lsattr -R   : %s\n' "$(meets "almost status" "lsattr -R" 5)"
    if [[ -n $C_ALMOST && -n $C_HAND ]]; then
        awk -v a="$C_ALMOST" -v b="$C_HAND" 'BEGIN { r = (b > 0 ? a / b : 1e9)
            printf "  commit within 1.5x of by hand        : %s (%.2fx)\n", (r <= 1.5 ? "met" : "NOT MET"), r }'
    else
        printf '  commit within 1.5x of by hand        : NOT MET (no measurement)\n'
    fi
    if ((peak > 0)); then
        awk -v k="$peak" 'BEGIN { printf "  peak RSS of almost < 32 MiB          : %s (%.1f MiB)\n",
            (k < 32 * 1024 ? "met" : "NOT MET"), k / 1024 }'
    else
        printf '  peak RSS of almost < 32 MiB          : NOT MET (no measurement)\n'
    fi
}

load_after=$(cut -d' ' -f1-3 /proc/loadavg)
sb_section "results"
mkdir -p "$outdir"
out="$outdir/bench-$entries-$(date -u +%Y%m%dT%H%M%SZ).txt"
report | tee "$out"
printf '\nsaved to %s\n' "${out#"$SB_SRC_DIR"/}"
sb_section "cleaning up (clearing flags, unmounting, deleting the image)"
