#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# A short fuzz run (build-aux/fuzz-smoke.sh [SECONDS], default 20): every
# cargo-fuzz target of fuzz/ runs that long on its kept corpus
# (fuzz/corpus/TARGET), one process, one core. What they find new goes to
# a temporary directory, so the kept corpus does not grow; a crash is left
# in fuzz/artifacts/TARGET/ and the run exits 1. Installs what it needs:
# the nightly toolchain (minimal profile) and cargo-fuzz (--locked).
#
# Long runs, by hand: cd fuzz && cargo +nightly fuzz run --sanitizer none
# TARGET corpus/TARGET -- -max_total_time=600 -rss_limit_mb=2048; then keep
# a small corpus: TARGET's binary (target/*/release/TARGET) with
# -set_cover_merge=1 -use_counters=0 -use_value_profile=0 NEW corpus/TARGET
# puts in NEW the few inputs that keep every edge covered.

set -euo pipefail

seconds=${1:-20}
cd "$(dirname "$0")/../fuzz"

if ! rustup toolchain list | grep -q '^nightly'; then
    rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install --locked cargo-fuzz
fi

# No sanitizer: the targets and what they call are safe Rust (but for
# the libc calls of core's xattr code), and without ASan they run two to
# five times faster. A debug build (--dev, overflow checks and debug
# assertions on, as in release fuzzing): it compiles with 2m50 of CPU
# against 5m00 for release, which matters more in a 15-second smoke run
# on the kept corpora than its slower executions (diff: ~120/s against
# ~1,800/s); the long runs use release (below, without --dev).
cargo +nightly fuzz build --dev --sanitizer none
mapfile -t targets < <(cargo +nightly fuzz list)

failed=()
for target in "${targets[@]}"; do
    new=$(mktemp -d)
    log=$new.log
    mkdir -p "corpus/$target"
    started=$SECONDS
    if cargo +nightly fuzz run --dev --sanitizer none "$target" "$new" "corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 >"$log" 2>&1; then
        # The last status line: runs, coverage, speed.
        stats=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n1 | tr -s ' \t' ' ' || true)
        echo "fuzz $target: ok in $((SECONDS - started)) s: ${stats:-no statistics}"
    else
        tail -n 40 "$log" >&2
        echo "fuzz $target: FAILED (the input is in fuzz/artifacts/$target/)" >&2
        failed+=("$target")
    fi
    rm -rf "$new" "$log"
done

# A target that crashed could not remove its scratch directory
# (/dev/shm/almost-fuzz-NAME-PID-…): remove those of dead processes.
for dir in /dev/shm/almost-fuzz-* "${TMPDIR:-/tmp}"/almost-fuzz-*; do
    [[ -d $dir ]] || continue
    pid=$(basename "$dir" | sed -E 's/^almost-fuzz-[a-z_]+-([0-9]+)-.*/\1/')
    if [[ $pid =~ ^[0-9]+$ ]] && ! kill -0 "$pid" 2>/dev/null; then
        rm -rf "$dir"
    fi
done

if ((${#failed[@]})); then
    echo "fuzz: crashes in ${failed[*]}" >&2
    exit 1
fi
echo "fuzz: ${#targets[@]} targets, no crash"
