#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The VM rig: installs the Debian packages of Almost with apt inside a booted
# Debian 12 guest (QEMU, the guest's own kernel) and runs the scenarios of
# issue 11 there: locked at boot, the apt guard and `almost run -- apt`,
# layers across reboots, power cuts while locking at boot and while
# committing a layer, default_mode across reboots, an offline update,
# pkexec through the real polkit, upgrade/remove/purge. Each scenario is
# checked inside the guest (lsattr, dpkg, journalctl, systemctl); result lines
# come back on the second serial port. The host boots the one disk of the
# run through a chain of boots (a reboot is QEMU exiting, -no-reboot), cuts
# the power with kill -9 of QEMU and checks the disk with e2fsck afterwards.
#
# Nothing here touches the machine's own system: the guest's disk is a file
# under /var/tmp, made with mkfs.ext4 -d from the cached base tarball
# (tests/vm/image.sh) and deleted at the end, also after a failure or Ctrl-C.
#
# Usage: sudo tests/vm/run.sh [--debs DIR] [--keep] [--tcg] [SCENARIO...]
#   SCENARIO: 1 install, 2 apt, 3 layer, 4 powercut, 5 modes, 6 offline,
#             7 polkit, 8 upgrade, 9 system (numbers or names; default: all)
#   --debs DIR  the almost_*.deb to test (default: build-aux/build-debs.sh)
#   --keep      keep the work directory (disk image, logs) for a look
#   --tcg       do not try KVM
# Logs: target/vm-results/ (console and results of every boot, summary).
# The last line says `vm: N passed, M failed`; exits non-zero on a failure.

set -euo pipefail

# shellcheck source=build-aux/sandbox.sh source-path=SCRIPTDIR/../..
. "$(dirname "${BASH_SOURCE[0]}")/../../build-aux/sandbox.sh"
# shellcheck source=tests/vm/image.sh source-path=SCRIPTDIR/../..
. "$SB_SRC_DIR/tests/vm/image.sh"

VM_SRC=$SB_SRC_DIR/tests/vm
RESULTS=${ALMOST_VM_RESULTS:-$SB_SRC_DIR/target/vm-results}

debs_dir=''
keep=''
try_kvm=1
wanted=()
while (($#)); do
    case $1 in
    --debs)
        debs_dir=$(readlink -f "${2:?--debs needs a directory}")
        shift 2
        ;;
    --keep) keep=1 && shift ;;
    --tcg) try_kvm='' && shift ;;
    -h | --help)
        sed -n '3,/^$/s/^# \{0,1\}//p' "$0"
        exit 0
        ;;
    1 | install) wanted+=(1) && shift ;;
    2 | apt) wanted+=(2) && shift ;;
    3 | layer) wanted+=(3) && shift ;;
    4 | powercut) wanted+=(4) && shift ;;
    5 | modes) wanted+=(5) && shift ;;
    6 | offline) wanted+=(6) && shift ;;
    7 | polkit) wanted+=(7) && shift ;;
    8 | upgrade) wanted+=(8) && shift ;;
    9 | system) wanted+=(9) && shift ;;
    *) sb_die "unknown argument: $1 (see --help)" ;;
    esac
done
((${#wanted[@]})) || wanted=(1 2 3 4 5 6 7 8 9)
want() {
    local w
    for w in "${wanted[@]}"; do [[ $w == "$1" ]] && return 0; done
    return 1
}

sb_require_root "$@"
started=$SECONDS

# --- state, cleanup -------------------------------------------------------

W=''          # the work directory (disk image, kernel, logs of this run)
QEMU_PID=''   # the QEMU running now, if any
passed=0
failed=0
failures=()
infos=()

cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    set +e
    if [[ -n $QEMU_PID ]] && kill -0 "$QEMU_PID" 2>/dev/null; then
        kill -9 "$QEMU_PID"
        wait "$QEMU_PID" 2>/dev/null
    fi
    if [[ -n $W && -d $W ]]; then
        if [[ -n $keep ]]; then
            sb_info "vm: kept $W"
        else
            rm -rf --one-file-system "$W"
        fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

host_pass() {
    passed=$((passed + 1))
    printf '  %sPASS%s %s\n' "$SB_GREEN" "$SB_RESET" "$*"
}
host_fail() {
    failed=$((failed + 1))
    failures+=("$*")
    printf '  %sFAIL%s %s\n' "$SB_RED" "$SB_RESET" "$*"
}

# --- the packages ---------------------------------------------------------

W=$(mktemp -d /var/tmp/almost-vm.XXXXXX)
mkdir -p "$RESULTS"
rm -f "$RESULTS"/boot-*.log "$RESULTS"/summary.txt

sb_section "vm: packages"
if [[ -z $debs_dir ]]; then
    [[ -x $SB_SRC_DIR/build-aux/build-debs.sh || -f $SB_SRC_DIR/build-aux/build-debs.sh ]] ||
        sb_die "build-aux/build-debs.sh is missing; give the packages with --debs DIR"
    debs_dir=$W/debs
    mkdir -p "$debs_dir"
    sb_info "building the packages: build-aux/build-debs.sh $debs_dir"
    bash "$SB_SRC_DIR/build-aux/build-debs.sh" "$debs_dir" >"$W/build-debs.log" 2>&1 || {
        tail -n 40 "$W/build-debs.log" >&2
        sb_die "build-aux/build-debs.sh failed (log above)"
    }
fi
shopt -s nullglob
almost_debs=("$debs_dir"/almost_*.deb)
shopt -u nullglob
((${#almost_debs[@]} == 1)) || sb_die "expected one almost_*.deb in $debs_dir, found ${#almost_debs[@]}"
almost_deb=${almost_debs[0]}
almost_version=$(dpkg-deb -f "$almost_deb" Version)
sb_info "almost $almost_version: $almost_deb"
sb_info "  Depends: $(dpkg-deb -f "$almost_deb" Depends)"

# Test packages made here with dpkg-deb: a command and its man page (a man-db
# trigger), one more for the layer scenario, one for after the purge.
# make_test_pkg NAME VERSION OUT [share]: "share" puts nothing outside /usr/share.
make_test_pkg() {
    local name=$1 version=$2 out=$3 only_share=${4:-} d
    d=$W/pkg-$name
    mkdir -p "$d/DEBIAN" "$d/usr/share/man/man1" "$d/usr/share/doc/$name" "$d/usr/share/$name"
    if [[ -z $only_share ]]; then
        mkdir -p "$d/usr/bin"
        printf '#!/bin/sh\necho "%s %s"\n' "$name" "$version" >"$d/usr/bin/$name"
        chmod 755 "$d/usr/bin/$name"
    fi
    printf '.TH %s 1\n.SH NAME\n%s \\- a test command of the Almost VM rig\n.SH DESCRIPTION\nPrints its version.\n' \
        "${name^^}" "$name" | gzip -9n >"$d/usr/share/man/man1/$name.1.gz"
    printf 'Test package of the Almost VM rig. Public domain.\n' >"$d/usr/share/doc/$name/copyright"
    seq 1 200 | sed "s/^/$name data line /" >"$d/usr/share/$name/data.txt"
    cat >"$d/DEBIAN/control" <<EOF
Package: $name
Version: $version
Architecture: all
Maintainer: Almost VM rig <vm@example.org>
Section: misc
Priority: optional
Description: test package of the Almost VM rig
 Ships a command, a man page and a data file.
EOF
    dpkg-deb --root-owner-group -Zgzip -b "$d" "$out" >/dev/null
}

# Scenario 9's package: a conffile in /etc, a command, a systemd unit that
# its postinst enables with deb-systemd-helper (which records it under
# /var/lib/systemd/deb-systemd-helper-enabled and links it in /etc), as
# Debian's packages with a service do.
make_conf_pkg() {
    local version=$1 out=$2 d=$W/pkg-vmtest-conf-$1
    mkdir -p "$d/DEBIAN" "$d/usr/bin" "$d/etc" "$d/usr/lib/systemd/system" "$d/usr/share/doc/vmtest-conf"
    printf '#!/bin/sh\ncat /etc/vmtest-conf.conf\n' >"$d/usr/bin/vmtest-conf"
    chmod 755 "$d/usr/bin/vmtest-conf"
    printf 'greeting = vmtest-conf %s\n' "$version" >"$d/etc/vmtest-conf.conf"
    printf '[Unit]\nDescription=vmtest-conf\n[Service]\nType=oneshot\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n' \
        >"$d/usr/lib/systemd/system/vmtest-conf.service"
    printf 'Test package of the Almost VM rig. Public domain.\n' >"$d/usr/share/doc/vmtest-conf/copyright"
    echo /etc/vmtest-conf.conf >"$d/DEBIAN/conffiles"
    printf '#!/bin/sh\nset -e\nif [ "$1" = configure ]; then deb-systemd-helper enable vmtest-conf.service; fi\n' >"$d/DEBIAN/postinst"
    printf '#!/bin/sh\nset -e\nif [ "$1" = purge ]; then deb-systemd-helper purge vmtest-conf.service; fi\n' >"$d/DEBIAN/postrm"
    chmod 755 "$d/DEBIAN/postinst" "$d/DEBIAN/postrm"
    cat >"$d/DEBIAN/control" <<EOF2
Package: vmtest-conf
Version: $version
Architecture: all
Maintainer: Almost VM rig <vm@example.org>
Section: misc
Priority: optional
Description: test package of the Almost VM rig with a conffile and a service
 Ships a command, a conffile and a unit its postinst enables.
EOF2
    dpkg-deb --root-owner-group -Zgzip -b "$d" "$out" >/dev/null
}

# The almost package again with a higher version (scenario 8).
make_upgrade_deb() {
    local d=$W/almost-up new
    new="$almost_version+vm1"
    dpkg-deb -R "$almost_deb" "$d"
    sed -i "s/^Version: .*/Version: $new/" "$d/DEBIAN/control"
    dpkg-deb -Zgzip -b "$d" "$W/guest-debs/almost_${new}_upgrade.deb" >/dev/null
    rm -rf "$d"
}

# --- the disk -------------------------------------------------------------

sb_section "vm: the guest's disk"
base_tar=$(vm_base_tarball)
R=$W/rootfs
mkdir -p "$R" "$W/guest-debs"
t0=$SECONDS
tar -C "$R" --numeric-owner --xattrs --xattrs-include='*' -xpf "$base_tar"

cp "$almost_deb" "$W/guest-debs/"
make_upgrade_deb
make_test_pkg vmtest-hello 1.0 "$W/guest-debs/vmtest-hello_1.0_all.deb"
make_test_pkg vmtest-layer 1.0 "$W/guest-debs/vmtest-layer_1.0_all.deb"
make_test_pkg vmtest-share 1.0 "$W/guest-debs/vmtest-share_1.0_all.deb" share
make_test_pkg vmtest-after 1.0 "$W/guest-debs/vmtest-after_1.0_all.deb"
make_conf_pkg 1.0 "$W/guest-debs/vmtest-conf_1.0_all.deb"

printf '/dev/vda / ext4 rw,errors=remount-ro 0 1\n' >"$R/etc/fstab"
echo almost-vm >"$R/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 almost-vm\n' >"$R/etc/hosts"
# Units a throwaway guest does not need: timers that would start apt, man-db
# or e2scrub in the middle of a scenario, the gettys (the serial ports carry
# the console and the results), and early units that cost seconds of
# emulated CPU at every boot for what this guest never uses (modules loaded
# on demand anyway, debug and hugepage file systems, first-boot setup). The
# system bus, logind, udev, journald and polkit stay: the scenarios need a
# real system.
for unit in apt-daily.timer apt-daily-upgrade.timer man-db.timer e2scrub_all.timer \
    e2scrub_reap.service fstrim.timer dpkg-db-backup.timer systemd-tmpfiles-clean.timer \
    serial-getty@ttyS0.service serial-getty@ttyS1.service getty@tty1.service \
    modprobe@dm_mod.service modprobe@drm.service modprobe@fuse.service modprobe@loop.service \
    modprobe@configfs.service modprobe@efi_pstore.service systemd-modules-load.service \
    kmod-static-nodes.service dev-hugepages.mount dev-mqueue.mount sys-kernel-debug.mount \
    sys-kernel-tracing.mount sys-fs-fuse-connections.mount sys-kernel-config.mount \
    systemd-random-seed.service systemd-sysusers.service systemd-pstore.service \
    systemd-firstboot.service systemd-machine-id-commit.service systemd-binfmt.service \
    proc-sys-fs-binfmt_misc.automount; do
    ln -sfn /dev/null "$R/etc/systemd/system/$unit"
done
chroot "$R" useradd --create-home --shell /bin/bash tester
# The guest side: scripts, packages, the unit that runs a stage each boot.
mkdir -p "$R/root/vm/debs"
cp "$VM_SRC"/guest/*.sh "$VM_SRC"/guest/*.service "$R/root/vm/"
cp "$W"/guest-debs/*.deb "$R/root/vm/debs/"
chmod 755 "$R"/root/vm/*.sh
# ALMOST_VM_PROFILE=1: every stage first prints systemd-analyze's figures.
[[ -z ${ALMOST_VM_PROFILE:-} ]] || touch "$R/root/vm/profile"
cp "$VM_SRC/guest/almost-vm-stage.service" "$R/etc/systemd/system/"
mkdir -p "$R/etc/systemd/system/multi-user.target.wants"
ln -sfn ../almost-vm-stage.service "$R/etc/systemd/system/multi-user.target.wants/almost-vm-stage.service"
# Less to read from the emulated disk at every boot.
sed -i 's/^#\?Storage=.*/Storage=persistent/' "$R/etc/systemd/journald.conf"

kernel=$(find "$R/boot" -maxdepth 1 -name 'vmlinuz-*' | sort | tail -n1)
initrd=$(find "$R/boot" -maxdepth 1 -name 'initrd.img-*' | sort | tail -n1)
[[ -n $kernel && -n $initrd ]] || sb_die "no kernel or initrd in the image's /boot"
cp "$kernel" "$W/vmlinuz"
cp "$initrd" "$W/initrd.img"

DISK=$W/disk.img
size_mib=$(($(du -sm "$R" | cut -f1) + 2048))
truncate -s "${size_mib}M" "$DISK"
mkfs.ext4 -q -F -L almost-vm -d "$R" "$DISK"
rm -rf --one-file-system "$R"
sb_info "disk: ${size_mib} MiB (sparse), $(du -sm "$DISK" | cut -f1) MiB used, made in $((SECONDS - t0)) s"

# --- booting --------------------------------------------------------------

# The accelerator: KVM if a guest boots under it (a kernel without a disk
# must reach its panic in a few seconds), else TCG.
ACCEL=tcg
SMP=2
if [[ -n $try_kvm && -w /dev/kvm ]]; then
    probe_log=$W/kvm-probe.log
    timeout 8 qemu-system-x86_64 -accel kvm -m 512 -smp 1 -nodefaults -display none -no-reboot \
        -kernel "$W/vmlinuz" -append "console=ttyS0 panic=-1" -serial "file:$probe_log" \
        >/dev/null 2>&1 || true
    if grep -aq 'Kernel panic' "$probe_log" 2>/dev/null; then
        ACCEL=kvm
    fi
fi
sb_info "accelerator: $ACCEL (-smp $SMP)"

boot_no=0
# boot NAME CMDLINE-EXTRA [KILL]: boots the disk once and waits for QEMU to
# end (the guest powers off or reboots). KILL is "console REGEX SECONDS" or
# "results REGEX SECONDS": kill -9 QEMU that many seconds after a line
# matching REGEX appears on the console or the results port (a power cut).
# Sets BOOT_LOG (the results) and BOOT_CONSOLE; returns 0 when QEMU ended by
# itself, 2 when it was killed as asked, 1 on a timeout.
BOOT_LOG=''
BOOT_CONSOLE=''
BOOT_SECS=0
BOOT_PHASES=''
boot() {
    local name=$1 extra=$2 kill_spec=${3:-}
    boot_no=$((boot_no + 1))
    BOOT_LOG=$RESULTS/boot-$(printf %02d "$boot_no")-$name.results.log
    BOOT_CONSOLE=$RESULTS/boot-$(printf %02d "$boot_no")-$name.console.log
    : >"$BOOT_LOG"
    : >"$BOOT_CONSOLE"
    local t0=$SECONDS timeout=600
    qemu-system-x86_64 -accel "$ACCEL" -m 2048 -smp "$SMP" -nodefaults -display none -no-reboot \
        -kernel "$W/vmlinuz" -initrd "$W/initrd.img" \
        -append "root=/dev/vda rw console=ttyS0 quiet mitigations=off systemd.show_status=1 systemd.gpt_auto=0 $extra" \
        -drive "file=$DISK,format=raw,if=virtio" -nic none \
        -serial "file:$BOOT_CONSOLE" -serial "file:$BOOT_LOG" &
    QEMU_PID=$!
    local where='' regex='' delay='' seen=''
    if [[ -n $kill_spec ]]; then
        read -r where regex delay <<<"$kill_spec"
    fi
    local rc=0 t_welcome='' t_stage='' t_end=''
    while kill -0 "$QEMU_PID" 2>/dev/null; do
        # When the phases begin: systemd in the guest, then the stage.
        if [[ -z $t_welcome ]] && grep -aq 'Welcome to' "$BOOT_CONSOLE"; then
            t_welcome=$((SECONDS - t0))
        fi
        if [[ -z $t_stage && -s $BOOT_LOG ]]; then
            t_stage=$((SECONDS - t0))
        fi
        if [[ -z $t_end ]] && grep -aq '^VMT END' "$BOOT_LOG"; then
            t_end=$((SECONDS - t0))
        fi
        if [[ -n $regex && -z $seen ]]; then
            local f=$BOOT_CONSOLE
            [[ $where == results ]] && f=$BOOT_LOG
            if grep -aqE "$regex" "$f"; then
                seen=1
                sleep "$delay"
                kill -9 "$QEMU_PID" 2>/dev/null || true
                rc=2
                break
            fi
        fi
        if ((SECONDS - t0 > timeout)); then
            kill -9 "$QEMU_PID" 2>/dev/null || true
            rc=1
            break
        fi
        sleep 0.05
    done
    wait "$QEMU_PID" 2>/dev/null || true
    QEMU_PID=''
    BOOT_SECS=$((SECONDS - t0))
    BOOT_PHASES="kernel+initrd ${t_welcome:-?} s, stage ${t_stage:-?}-${t_end:-?} s, off at $BOOT_SECS s"
    sed -i 's/\r$//' "$BOOT_LOG"
    return "$rc"
}

# Reads the result lines of the last boot: counts them, prints them.
read_results() {
    local line
    while IFS= read -r line; do
        case $line in
        'VMT PASS '*) host_pass "${line#VMT PASS }" ;;
        'VMT FAIL '*) host_fail "${line#VMT FAIL }" ;;
        'VMT INFO '*)
            infos+=("${line#VMT INFO }")
            printf '  INFO %s\n' "${line#VMT INFO }"
            ;;
        '  | '*) printf '       %s\n' "$line" ;;
        esac
    done < <(grep -a -o -E '(VMT (PASS|FAIL|INFO) .*|  \| .*)' "$BOOT_LOG")
}

# fsck_disk ID: e2fsck -fn on the image (after a power cut). If the journal
# needs recovery (what the next mount does), it is replayed on a copy first.
fsck_disk() {
    local id=$1 out=$W/fsck.out img=$DISK
    if dumpe2fs -h "$DISK" 2>/dev/null | grep -q '^Filesystem features:.*needs_recovery'; then
        cp --sparse=always "$DISK" "$W/fsck.img"
        img=$W/fsck.img
        e2fsck -E journal_only -y "$img" >"$out" 2>&1 || true
    fi
    if e2fsck -fn "$img" >>"$out" 2>&1; then
        host_pass "$id: e2fsck -fn of the disk is clean${img/#$W\/fsck.img/ (journal replayed on a copy)}"
    else
        host_fail "$id: e2fsck -fn of the disk found errors"
        tail -n 20 "$out" | sed 's/^/       | /'
    fi
    rm -f "$W/fsck.img"
}

# --- the chain of boots ---------------------------------------------------

# The plan: one entry per boot, "KILL STEPS" (STEPS: the guest's steps,
# comma-separated, - for none). KILL is "-" (the guest powers off by
# itself), "commit:SECONDS" (cut the power that long after the guest marks
# the start of a layer commit), "boot:SECONDS" (that long after
# almost-boot.service starts: it does an at-boot commit and locks) or
# "offline" (the offline update boot: the test updater reports and
# reboots). Boots are shared by the scenarios wherever their states allow
# (the order below is the one that needs the fewest boots).
read -r -a commit_delays <<<"${ALMOST_VM_COMMIT_DELAYS:-2 4}"
read -r -a boot_delays <<<"${ALMOST_VM_BOOT_DELAYS:-1 3}"
plan=()
cur=''
add() {
    local s
    for s in "$@"; do cur+="${cur:+,}$s"; done
}
close() { plan+=("${1:--} ${cur:--}") && cur=''; }

add install
close
add locked
# The system layer in a freshly booted locked system. systemd-udevd loads
# its hardware database from a layer over /usr at any device event and
# holds it; the scenario makes it do so (device events) and checks that
# the discard and the commit ask it to let go (core/src/layer/busy.rs).
want 9 && add s9
if want 3; then
    # A layer over /usr committed in its boot; one kept across the reboot,
    # committed at the next boot (refused now: busy), whose almost-boot the
    # power cut of scenario 4's first round interrupts.
    add s3-sameboot s3-setup
    close
    add s3-remounted
    close
    want 4 && close "boot:${boot_delays[0]}"
    add s3-committed
    want 4 && add s4-check
    add s3-discard-setup
fi
want 5 && add s5-set-unlocked
if want 3 || want 5; then
    close
    want 3 && add s3-discarded
fi
if want 5; then
    add s5-unlocked s5-set-keep
    close
    add s5-keep-unlocked s1-chattr
else
    add s1-chattr
fi
want 2 && add s2
want 7 && add s7
if want 4; then
    add s4-cut-commit
    close "commit:${commit_delays[0]}"
    add s4-check
fi
if want 5; then
    want 4 || close
    add s5-keep-locked
fi
if want 6; then
    add s6-prepare
    close
    close offline
    add s6-done
fi
if want 4; then
    add s4-at-boot-setup
    close
    close "boot:${boot_delays[1]:-${boot_delays[0]}}"
    add s4-check
    # A second delay of the same-boot commit costs a boot more.
    if ((${#commit_delays[@]} > 1)); then
        add s4-cut-commit
        close "commit:${commit_delays[1]}"
        add s4-check
    fi
fi
want 8 && add s8
close

boots_started=$SECONDS
sb_section "vm: boots (${#plan[@]})"
for entry in "${plan[@]}"; do
    read -r kill steps <<<"$entry"
    name=${steps//,/+}
    [[ $name == - ]] && name=cut
    [[ $kill == offline ]] && name=offline-update
    sb_info "boot $((boot_no + 1)): $steps${kill/#-/}"
    args="almost_vm.name=$name almost_vm.steps=$steps"
    rc=0
    case $kill in
    -)
        boot "$name" "$args" || rc=$?
        read_results
        if ((rc == 1)); then
            host_fail "boot.$name: the guest did not power off within its time limit (console: $BOOT_CONSOLE)"
        elif grep -aq "^VMT END $name" "$BOOT_LOG"; then
            host_pass "boot.$name: the stage ran to its end and the guest powered off ($BOOT_PHASES)"
        else
            host_fail "boot.$name: the stage did not end (see $BOOT_CONSOLE, $BOOT_LOG)"
            sed 's/\x1b\[[0-9;]*[a-zA-Z]//g' "$BOOT_CONSOLE" | tail -n 15 | sed 's/^/       console| /'
        fi
        ;;
    offline)
        boot "$name" "" || rc=$?
        read_results
        # (The updater's results come with the next boot's stage.)
        if ((rc == 0)); then
            host_pass "s6.boot: the offline update boot ended by itself (the updater rebooted; $BOOT_PHASES)"
        else
            host_fail "s6.boot: the offline update boot did not end with the updater's reboot"
            sed 's/\x1b\[[0-9;]*[a-zA-Z]//g' "$BOOT_CONSOLE" | tail -n 15 | sed 's/^/       console| /'
        fi
        ;;
    commit:*)
        delay=${kill#commit:}
        boot "$name" "$args" "results ^VMT.MARK.commit-start $delay" || rc=$?
        read_results
        if ((rc == 2)); then
            state="while it ran"
            grep -aq 'MARK commit-done' "$BOOT_LOG" && state="after it had ended (too late)"
            infos+=("s4.cut-commit: power cut $delay s after almost layer commit started, $state ($BOOT_PHASES)")
            host_pass "s4.cut-commit: power cut $delay s after almost layer commit started ($state)"
        else
            host_fail "s4.cut-commit: the commit was not seen starting (no power cut)"
        fi
        fsck_disk "s4.fsck-after-commit-cut-$delay"
        ;;
    boot:*)
        delay=${kill#boot:}
        boot "$name" "$args" "console Starting.*almost-boot $delay" || rc=$?
        if ((rc == 2)); then
            state="while it ran"
            grep -aqE 'Finished.*almost-boot' "$BOOT_CONSOLE" && state="after it had finished (too late)"
            infos+=("s4.cut-boot: power cut $delay s after almost-boot.service started, $state ($BOOT_PHASES)")
            host_pass "s4.cut-boot: power cut $delay s after almost-boot.service started (at-boot commit and lock; $state)"
        else
            host_fail "s4.cut-boot: almost-boot.service was not seen starting (no power cut)"
            sed 's/\x1b\[[0-9;]*[a-zA-Z]//g' "$BOOT_CONSOLE" | tail -n 15 | sed 's/^/       console| /'
        fi
        fsck_disk "s4.fsck-after-boot-cut-$delay"
        ;;
    esac
done

# --- summary --------------------------------------------------------------

sb_section "vm: summary"
{
    printf 'accelerator: %s, %s boots, %s s (boots %s s), almost %s\n' "$ACCEL" "$boot_no" \
        "$((SECONDS - started))" "$((SECONDS - boots_started))" "$almost_version"
    for i in "${infos[@]}"; do printf 'info: %s\n' "$i"; done
    for f in "${failures[@]}"; do printf 'FAILED: %s\n' "$f"; done
} | tee "$RESULTS/summary.txt"
printf '\nvm: %d passed, %d failed\n' "$passed" "$failed" | tee -a "$RESULTS/summary.txt"
((failed == 0))
