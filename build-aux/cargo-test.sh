#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Every cargo test of the workspace, as `cargo test --workspace
# --no-fail-fast` runs them, but JOBS test binaries at a time (default 2)
# instead of one after the other: most of the integration tests wait on
# loop images, e2fsck, strace and child processes more than they compute,
# so two binaries side by side fill the two CPUs that one leaves half idle.
# Each binary runs as cargo would run it (from its package's directory,
# its tests on as many threads as cargo gives them), in a private mount
# namespace of its own; its output goes to a log, printed whole when it
# fails. The doc tests follow. Exits 1 when anything failed.
#
# Usage: sudo build-aux/cargo-test.sh [-j JOBS] [CARGO TEST ARGS...]
#   e.g. build-aux/cargo-test.sh -j 1 (as cargo does), or -p almost-core.

set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

jobs=2
if [[ ${1:-} == -j ]]; then
    jobs=$2
    shift 2
fi
select=("$@")
((${#select[@]})) || select=(--workspace)

work=$(mktemp -d "${TMPDIR:-/tmp}/almost-cargo-test.XXXXXX")
trap 'rm -rf "$work"' EXIT

# The test binaries, built as `cargo test` builds them: path, package
# directory, name (crate or test target).
cargo test "${select[@]}" --no-run --message-format=json-render-diagnostics >"$work/build.json"
python3 - "$work/build.json" >"$work/list" <<'EOF'
import json, os, sys
seen = set()
for line in open(sys.argv[1]):
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") != "compiler-artifact" or not m.get("executable"):
        continue
    if not m.get("profile", {}).get("test"):
        continue
    exe = m["executable"]
    if exe in seen:
        continue
    seen.add(exe)
    pkg = os.path.dirname(m["manifest_path"])
    kind = "unit" if m["target"]["kind"] != ["test"] else "test"
    print("\t".join([exe, pkg, f'{os.path.basename(pkg)} {kind} {m["target"]["name"]}']))
EOF
count=$(wc -l <"$work/list")

# One binary: its log and, in NAME.rc, its exit code.
run_one() {
    local exe=$1 pkg=$2 name=$3 log rc t0=$SECONDS
    log=$work/$(basename "$exe").log
    rc=0
    (cd "$pkg" && unshare --mount --propagation private -- "$exe") >"$log" 2>&1 || rc=$?
    echo "$rc $((SECONDS - t0))" >"$log.rc"
    printf '%-40s %s in %s s\n' "$name" "$([[ $rc == 0 ]] && echo ok || echo "FAILED (exit $rc)")" \
        "$((SECONDS - t0))"
}
export -f run_one
export work

echo "cargo-test: $count test binaries, $jobs at a time"
t0=$SECONDS
# The integration tests of almost-helper first (the longest), then the rest.
sort -t $'\t' -k3,3r "$work/list" |
    awk -F '\t' '{print (($3 ~ / test /) ? 0 : 1) "\t" $0}' | sort -s -n -k1,1 | cut -f2- |
    tr '\t\n' '\0\0' | xargs -0 -n 3 -P "$jobs" bash -c 'run_one "$@"' _ || true

failed=()
passed=0
while IFS=$'\t' read -r exe _ name; do
    log=$work/$(basename "$exe").log
    read -r rc _ <"$log.rc" 2>/dev/null || rc=missing
    if [[ $rc == 0 ]]; then
        passed=$((passed + $(grep -oE '^test result: ok\. [0-9]+ passed' "$log" | grep -oE '[0-9]+' | head -n1 || echo 0)))
    else
        failed+=("$name")
        echo
        echo "==== $name: exit $rc; its output:"
        cat "$log"
    fi
done <"$work/list"

echo
echo "cargo-test: the doc tests"
if ! cargo test "${select[@]}" --doc --no-fail-fast; then
    failed+=("doc tests")
fi

echo
echo "cargo-test: $count binaries, $passed tests passed, ${#failed[@]} failed, in $((SECONDS - t0)) s (after the build)"
if ((${#failed[@]})); then
    printf '  FAILED: %s\n' "${failed[@]}"
    exit 1
fi
