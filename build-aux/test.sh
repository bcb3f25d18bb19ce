#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The whole test suite, as the README and CI run it (sudo build-aux/test.sh):
# dependencies, cargo fmt --check, clippy -D warnings, then every cargo test
# of the workspace (build-aux/cargo-test.sh: two test binaries at a time,
# each in a private mount namespace, so that the loop images and mounts
# the tests make are never visible to the machine and vanish with them),
# then the Debian packages (build-aux/build-debs.sh: dpkg-buildpackage and
# lintian; tests/deb/check-debs.sh). The VM rig (tests/vm/run.sh: those
# packages installed with apt in a booted Debian 12 guest; at most 15
# minutes) then runs in the background while the rest runs: the fuzz smoke
# run, meson's tests (data-file validators, the install test into a
# temporary DESTDIR), the GUI suite of the panel (tests/gui/run.sh: its own
# sandbox, Xvfb and session bus, no display needed), the Ansible collection
# (tests/ansible/run.sh: ansible-test sanity and the playbooks against
# sandbox roots) and a small run of the benchmark (that it works); its
# output comes last. The guest's base image is made in the background from
# the start. Exits non-zero if any step fails; the last lines say
# `gui: N passed, M failed` (and ansible, vm) and the verdict.
# `build-aux/test.sh --vm` runs the VM part alone, `--no-vm` everything
# else, `--ansible` the Ansible collection alone.

set -euo pipefail

# shellcheck source=build-aux/sandbox.sh source-path=SCRIPTDIR/..
. "$(dirname "${BASH_SOURCE[0]}")/sandbox.sh"

sb_require_root "$@"
cd "$SB_SRC_DIR"

only_vm='' no_vm='' only_ansible=''
case ${1:-} in
--vm) only_vm=1 ;;
--no-vm) no_vm=1 ;;
--ansible) only_ansible=1 ;;
'') ;;
*) sb_die "usage: $0 [--vm | --no-vm | --ansible]" ;;
esac

# The parts that run a suite of their own (the GUI, the Ansible collection,
# the VM rig) end with a line "N passed, M failed" (prefixed "NAME: " by
# some). run_part NAME LABEL HEADING COMMAND... runs one, shows its output,
# keeps "NAME: N passed, M failed in S s" in part_line[NAME] for the summary
# and adds LABEL to the failures if it failed or stopped before that line.
declare -A part_line
run_part() {
    local name=$1 label=$2 heading=$3
    shift 3
    sb_section "$heading"
    local log started=$SECONDS rc=0 counts
    log=$(mktemp)
    "$@" 2>&1 | tee "$log" || rc=$?
    counts=$(grep -E "^($name: )?[0-9]+ passed, [0-9]+ failed\$" "$log" | tail -n1 || true)
    rm -f "$log"
    counts=${counts#"$name: "}
    if [[ -z $counts ]]; then
        counts="0 passed, 1 failed (it stopped before the end, status $rc)"
        rc=1
    fi
    part_line[$name]="$name: $counts in $((SECONDS - started)) s"
    ((rc == 0)) || failed+=("$label")
}

# The summary: each part's line (NAME...), then the verdict; exits.
finish() {
    local name list
    printf '\n'
    for name in "$@"; do
        printf '%s\n' "${part_line[$name]:-$name: not run}"
    done
    if ((${#failed[@]})); then
        list=$(printf '%s, ' "${failed[@]}")
        printf '\n%sFAILED:%s %s\n' "$SB_RED" "$SB_RESET" "${list%, }"
        exit 1
    fi
    printf '\n%sall checks passed%s\n' "$SB_GREEN" "$SB_RESET"
    exit 0
}

# The Ansible collection almost.system: ansible-test sanity, then the
# integration playbooks against sandbox roots in a loop image (its own
# private mount namespace).
run_ansible_tests() {
    run_part ansible "Ansible tests" \
        "Ansible tests: tests/ansible/run.sh (ansible-test sanity, playbooks on sandboxes; logs in target/ansible-results/)" \
        bash tests/ansible/run.sh
}

failed=()
if [[ -n $only_ansible ]]; then
    bash build-aux/install-deps.sh
    sb_need_cargo
    run_ansible_tests
    finish ansible
fi
if [[ -n $only_vm ]]; then
    # The VM rig alone: its own packages (build-aux/build-debs.sh), image
    # and QEMU guest.
    run_part vm "VM tests" \
        "VM tests: tests/vm/run.sh (Debian 12 guest in QEMU; results in target/vm-results/)" \
        bash tests/vm/run.sh
    finish vm
fi

sb_section "dependencies"
bash build-aux/install-deps.sh
sb_need_cargo

# The VM rig runs in the background from the start: first the guest's base
# image (mmdebstrap, cached in /var/cache/almost-vm: it waits on the
# network and the disk more than on the CPUs), then, once the Debian
# packages below are built, the guest boots with them while the rest of
# the suite runs. A TCG guest waits on its own timers and disk as much as
# it computes, and so do most tests: side by side they take far less than
# one after the other on two CPUs (the VM part alone is 11 minutes). Its
# output is shown last.
mkdir -p "$SB_SRC_DIR/target"
vm_image_log=$SB_SRC_DIR/target/vm-image.log
vm_log=$SB_SRC_DIR/target/vm-run.log
debs_dir=$SB_SRC_DIR/target/debs
debs_mark=$SB_SRC_DIR/target/debs.state
rm -f "$debs_mark"
vm_pid=''
vm_started=$SECONDS
if [[ -z $no_vm ]]; then
    (
        if ! bash tests/vm/image.sh >"$vm_image_log" 2>&1; then
            echo "the VM image could not be made in the background (target/vm-image.log):"
            tail -n 20 "$vm_image_log"
        fi
        while [[ ! -s $debs_mark ]]; do sleep 2; done
        if [[ $(cat "$debs_mark") != ok ]]; then
            echo "vm: not run (no packages)"
            exit 3
        fi
        exec bash tests/vm/run.sh --debs "$debs_dir"
    ) >"$vm_log" 2>&1 &
    vm_pid=$!
    sb_info "the VM rig runs in the background (its output: target/vm-run.log, shown at the end)"
fi
# If this script stops early (an error, ^C), the background job must not
# wait for packages that never come, nor boot on alone: its image step
# is ended, and run.sh, which it becomes, cleans up (kills its QEMU) on
# TERM.
# shellcheck disable=SC2317 # called by the EXIT trap
stop_vm() {
    [[ -s $debs_mark ]] || echo failed >"$debs_mark"
    if [[ -n $vm_pid ]] && kill -0 "$vm_pid" 2>/dev/null; then
        pkill -TERM -P "$vm_pid" 2>/dev/null || true
        kill -TERM "$vm_pid" 2>/dev/null || true
    fi
}
trap stop_vm EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

sb_section "cargo fmt --all -- --check"
cargo fmt --all -- --check || failed+=("cargo fmt")

# The Debian packages, built as a user would (dpkg-buildpackage, lintian
# errors fail) and checked with dpkg-deb; the VM rig installs these.
sb_section "Debian packages: build-aux/build-debs.sh target/debs, tests/deb/check-debs.sh"
rm -rf "$debs_dir"
if bash build-aux/build-debs.sh "$debs_dir" && bash tests/deb/check-debs.sh "$debs_dir"; then
    echo ok >"$debs_mark"
else
    echo failed >"$debs_mark"
    failed+=("Debian packages")
fi

sb_section "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings || failed+=("cargo clippy")

# What the machine has mounted or attached before the tests, to tell what
# they left behind.
loop_mounts() { awk '$1 ~ "^/dev/loop" || $3 == "overlay" {print $1, $2, $3}' /proc/mounts | sort; }
loop_devices() { losetup -n -l -O NAME,BACK-FILE 2>/dev/null | sort; }
mounts_before=$(loop_mounts)
loops_before=$(loop_devices)

sb_section "cargo test: build-aux/cargo-test.sh (every test of the workspace, two binaries at a time, each in a private mount namespace)"
bash build-aux/cargo-test.sh || failed+=("cargo test")

# Meson: the data-file validators and the install test (meson test, see
# build-aux/meson.build). A debug build in the cargo target dir the tests
# just used, so the one cargo build meson runs finds everything built.
# The parsers of what root reads (config, layer.json, journals, state,
# mountinfo) and the layer diff, fuzzed briefly on their kept corpora
# (fuzz/; a crash fails).
sb_section "fuzz smoke run: build-aux/fuzz-smoke.sh (15 s a target)"
bash build-aux/fuzz-smoke.sh 15 || failed+=("fuzz smoke run")

sb_section "meson setup + compile + test (target/meson)"
meson_dir=target/meson
meson_opts=(--prefix=/usr -Dprofile=development "-Dcargo_target_dir=$SB_SRC_DIR/target")
if [[ -f $meson_dir/build.ninja ]]; then
    meson_setup=(meson setup --reconfigure "${meson_opts[@]}" "$meson_dir")
else
    meson_setup=(meson setup "${meson_opts[@]}" "$meson_dir")
fi
if "${meson_setup[@]}" >/dev/null && meson compile -C "$meson_dir" >/dev/null; then
    meson test -C "$meson_dir" --print-errorlogs || failed+=("meson test")
else
    failed+=("meson setup/compile")
fi

run_part gui "GUI tests" "GUI tests: tests/gui/run.sh (Xvfb, AT-SPI; results in target/gui-results/)" \
    bash tests/gui/run.sh

run_ansible_tests

# The benchmark is not a test (it fails nothing on speed), but it must keep
# working: a small tree, one round, the debug almost the tests built. Every
# row must have figures, the layer steps too, and it must clean up (checked
# with the rest below).
sb_section "benchmark smoke run: build-aux/bench.sh --entries 2000 --runs 1 (that it works, not how fast)"
bench_dir=$(mktemp -d)
if bash build-aux/bench.sh --entries 2000 --runs 1 --almost target/debug/almost \
    --out "$bench_dir" >"$bench_dir/log" 2>&1 &&
    grep -q '^targets:' "$bench_dir/log" &&
    ! grep -E 'n/a|failed|NOT MET \(no measurement\)' "$bench_dir"/bench-*.txt; then
    sb_info "the benchmark ran: $(grep -c 'x  ' "$bench_dir"/bench-*.txt) rows of figures"
else
    tail -n 40 "$bench_dir/log" >&2
    failed+=("benchmark smoke run")
fi
rm -rf "$bench_dir"

sb_section "leftovers"
new_mounts=$(comm -13 <(printf '%s\n' "$mounts_before") <(loop_mounts) | sed '/^$/d')
new_loops=$(comm -13 <(printf '%s\n' "$loops_before") <(loop_devices) | sed '/^$/d')
if [[ -n $new_mounts ]]; then
    sb_warn "the tests left mounts on the machine:"
    printf '  %s\n' "${new_mounts//$'\n'/$'\n  '}" >&2
fi
if [[ -n $new_loops ]]; then
    sb_warn "the tests left loop devices attached (losetup -d them):"
    printf '  %s\n' "${new_loops//$'\n'/$'\n  '}" >&2
fi
if [[ -z $new_mounts && -z $new_loops ]]; then
    sb_info "no loop device or mount left behind"
fi

# The VM rig, started in the background after the packages: its output
# and counts, as run_part shows a part's.
sb_section "VM tests: tests/vm/run.sh (Debian 12 guest in QEMU; results in target/vm-results/)"
if [[ -n $no_vm ]]; then
    part_line[vm]="vm: not run (--no-vm)"
else
    vm_rc=0
    wait "$vm_pid" || vm_rc=$?
    cat "$vm_log"
    counts=$(grep -E "^(vm: )?[0-9]+ passed, [0-9]+ failed\$" "$vm_log" | tail -n1 || true)
    counts=${counts#"vm: "}
    if [[ -z $counts ]]; then
        counts="0 passed, 1 failed (it stopped before the end, status $vm_rc)"
        vm_rc=1
    fi
    part_line[vm]="vm: $counts in $((SECONDS - vm_started)) s (in the background, image and packages included)"
    ((vm_rc == 0)) || failed+=("VM tests")
fi

finish gui ansible vm
