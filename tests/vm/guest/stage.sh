#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# One boot of the VM rig, inside the guest (run by almost-vm-stage.service
# once the guest has booted; never on the host). The host says what to do
# on the kernel command line:
#   almost_vm.steps=STEP,STEP  what this boot checks and sets up, in order
#                              (the functions step_* below, - for none)
#   almost_vm.name=NAME        the boot's name (the last line says it)
# Results go to stdout (the second serial port) as lib.sh describes; the
# last line is "VMT END <name>", then the guest powers off.

set -uo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8
# shellcheck source=tests/vm/guest/lib.sh
. /root/vm/lib.sh

arg() { sed -n "s/.*almost_vm\.$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
STEPS=$(arg steps)
NAME=$(arg name)

DEBS=$VM_DIR/debs
# Where the layer scenarios change things (their manifests hash these files).
HASHED=(/usr/bin /usr/share/vmtest-hello /usr/share/vmtest-layer /usr/share/vmtest-share
    /usr/share/vmtest-discard /usr/share/doc/vmtest-hello /usr/share/doc/vmtest-layer
    /usr/share/doc/vmtest-share /usr/share/man/man1 /usr/share/vmtest-cut)
# Scenario 4's own rounds change only this tree.
CUT_HASHED=(/usr/share/vmtest-cut)
APT=(apt-get -y -q -o Dpkg::Use-Pty=0)

# The id of the layer `almost layer new` made (its last word).
# Nothing when it failed (its output then in layer-new.out).
new_layer() {
    local out=$VM_STATE/layer-new.out
    almost layer new "$1" >"$out" 2>&1 || return 0
    tail -n 1 "$out" | awk '{print $NF}'
}
is_overlay() { findmnt -n -o FSTYPE --mountpoint "$1" | grep -qx overlay; }
no_layer() {
    local l
    l=$(almost layer list 2>&1)
    ! grep -q '/usr\|/opt' <<<"$l" || {
        echo "$l"
        return 1
    }
    ! findmnt -n -t overlay | grep -q . || {
        findmnt -n -t overlay
        return 1
    }
}
# pending_is ID ACT: almost layer list --json marks the layer "pending": ACT.
pending_is() {
    local js
    js=$(almost layer list --json 2>&1 | tr -d ' \n')
    echo "$js" | head -c 600
    echo
    grep -q "\"$1\"" <<<"$js" && grep -q "\"pending\":\"$2\"" <<<"$js"
}
# The processes in mount namespaces other than init's (services' sandboxes
# hold propagated copies of a layer's mount): evidence when a commit fails.
other_namespaces() {
    local init_ns p ns
    init_ns=$(readlink /proc/1/ns/mnt)
    for p in /proc/[0-9]*; do
        ns=$(readlink "$p/ns/mnt" 2>/dev/null) || continue
        [[ $ns == "$init_ns" ]] || printf '%s(%s) ' "${p#/proc/}" "$(cat "$p/comm")"
    done
}
# After a failed commit or discard (the failure is recorded): lazy unmount
# and discard of the unmounted layer, so that the steps after this one start
# from a system without a layer.
layer_cleanup() {
    local tag=$1 dir=$2 id=$3
    vm_info "$tag-cleanup" "after the failure: umount -l $dir, almost layer discard $id"
    umount -l "$dir"
    almost layer discard "$id" --yes >/dev/null 2>&1 || vm_info "$tag-cleanup" "the discard failed too"
}

# --- scenario 1: install, locked at boot ------------------------------------

# The first boot: apt installs the package from its file (no network: its
# Depends must be in the image already). Installing locks nothing.
step_install() {
    local deb snap=$VM_STATE/install.snap
    deb=$(ls "$DEBS"/almost_*.deb | grep -v _upgrade)
    vm_info install "$(dpkg-deb -f "$deb" Package Version Depends | tr '\n' ' ')"
    check s1.apt-install "apt-get install ./almost_*.deb succeeds with no network (its Depends are in the image)" \
        "${APT[@]}" install "$deb"
    check s1.dpkg-installed "dpkg says almost is installed" \
        sh -c 'dpkg-query -W -f="\${Status}" almost | grep -qx "install ok installed"'
    check s1.boot-unit-enabled "the package enabled almost-boot.service" systemctl is-enabled almost-boot.service
    check_not s1.boot-unit-not-started "the package did not start almost-boot.service" \
        systemctl is-active almost-boot.service
    snapshot_trees "$snap"
    check s1.install-locks-nothing "installing locked nothing (lsattr -R: no immutable flag in the managed trees)" \
        none_locked_in "$snap"
    # The lock check must be able to fail: on this unlocked tree it does.
    check_not s1.selftest-all-locked "(self-test) the every-entry-locked check fails on the unlocked tree" \
        all_locked_in "$snap"
    check s1.hook-installed "the apt hook is installed" test -f /etc/apt/apt.conf.d/80almost
    vm_info s1.managed "managed: $(managed_paths | tr '\n' ' ')excluded: $(excluded_paths | tr '\n' ' ')"
}

# The boot after the install locked the managed trees.
step_locked() {
    local snap=$VM_STATE/locked.snap blame entries
    wait_boot_finished
    snapshot_trees "$snap"
    check s1.all-locked "every file and directory of the managed trees has the immutable flag (lsattr -R against find)" \
        all_locked_in "$snap"
    # Self-test: the same listing with one flag taken away must fail.
    awk 'NR == 1 || $2 != "/usr/bin/almost"' "$snap.flags" >"$snap-one.flags"
    cp "$snap.all" "$snap-one.all"
    check_not s1.selftest-one-missing "(self-test) the check fails when one entry (/usr/bin/almost) lacks the flag" \
        all_locked_in "$snap-one"
    check s1.no-failed-units "systemctl --failed is empty" no_failed_units
    check s1.boot-unit-ran "almost-boot.service ran and succeeded in this boot" \
        sh -c 'systemctl show -P Result almost-boot.service | grep -qx success && systemctl is-active almost-boot.service'
    check_not s1.root-cannot-create "root cannot create a file in /usr/bin" touch /usr/bin/vm-probe
    check_not s1.probe-absent "(and no such file appeared)" test -e /usr/bin/vm-probe
    check s1.status-locked "almost status --json says locked, no entry unlocked" locked_by_status
    check s1.journal-audit "the journal has this boot's audit entry of almost boot (journalctl -t almost -b)" \
        sh -c 'journalctl -b -t almost --no-pager -o cat | grep -q "almost boot"'
    vm_info s1.journal "$(journalctl -b -t almost --no-pager -o cat | grep 'almost boot' | head -n 2 | tr '\n' ' ')"
    blame=$(systemd-analyze blame --no-pager 2>/dev/null | grep -w almost-boot.service | awk '{$NF=""; print}' | xargs)
    entries=$(wc -l <"$snap.all")
    echo "${blame:-?}" >"$VM_STATE/blame"
    vm_info s1.blame "almost-boot.service: ${blame:-?} (systemd-analyze blame; the first lock, cold caches), $entries flaggable entries"
}

# The figure beside almost-boot.service: chattr -R +i of the same trees in
# the same guest, and almost unlock and lock with the same (warm) caches.
# From an unlocked system (unlocked first if needed); locked at the end.
step_s1_chattr() {
    local t_chattr t_lock t_unlock p
    status_is unlocked >/dev/null || almost unlock --yes >/dev/null 2>&1
    # shellcheck disable=SC2046
    t_chattr=$(secs_of chattr -R -f +i $(managed_paths))
    # chattr knows nothing of the exclusions: they are cleared again.
    for p in $(excluded_paths); do
        [[ -e $p ]] && chattr -R -f -i "$p"
    done
    t_unlock=$(secs_of almost unlock --yes)
    t_lock=$(secs_of almost lock)
    vm_info s1.timing "warm caches, same trees: chattr -R +i ${t_chattr} s, almost unlock ${t_unlock} s, almost lock ${t_lock} s (almost-boot.service, the first lock with cold caches: $(cat "$VM_STATE/blame" 2>/dev/null))"
    check s1.relocked "locked again after the timing run (almost status --json)" locked_by_status
}

step_lock() {
    check lock "almost lock" almost lock
}

# almost layer commit ID, tried again (up to 5 times, 2 s apart) while it
# is refused as busy (exit 8, which changes nothing): a udev worker that
# runs a program from /usr while the layer is mounted holds it for a
# moment (seen once in three full runs: "in use by 189 (systemd-udevd)").
commit_retrying_busy() {
    local n rc=8
    for n in 1 2 3 4 5; do
        almost layer commit "$1" --yes && return 0
        rc=$?
        ((rc == 8)) || return "$rc"
        echo "busy (try $n of 5)"
        sleep 2
    done
    return "$rc"
}

# --- scenario 3: layers ---------------------------------------------------------

# A fresh layer over /usr, a package installed into it with dpkg -i, and
# committed in the same boot: nothing but almost itself uses the layer.
step_s3_sameboot() {
    local id t0 t1 st=$VM_STATE
    id=$(new_layer /usr)
    check s3.same-new "a layer over /usr is made and mounted" is_overlay /usr
    check s3.same-dpkg "dpkg -i installs vmtest-share into it" dpkg -i "$DEBS/vmtest-share_1.0_all.deb"
    vm_manifest /usr "${HASHED[@]}" >"$st/same.merged"
    t0=$EPOCHREALTIME
    check s3.same-commit "almost layer commit of the layer (made in this boot, nobody else using it) works directly" \
        commit_retrying_busy "$id"
    t1=$EPOCHREALTIME
    vm_info s3.same-commit "$(awk -v a="${t0/,/.}" -v b="${t1/,/.}" 'BEGIN {printf "%.2f", b - a}') s"
    if is_overlay /usr; then
        vm_info s3.same-busy "other mount namespaces: $(other_namespaces)"
        layer_cleanup s3.same /usr "$id"
    fi
    check s3.same-unmounted "no overlay over /usr after the commit" sh -c '! findmnt -n --mountpoint /usr'
    lower_manifest /usr "${HASHED[@]}" >"$st/same.lower"
    check s3.same-equals-merged "/usr (the root filesystem's own tree) equals what the layer showed (manifest)" \
        same_manifest "$st/same.merged" "$st/same.lower"
    check s3.same-locked "the committed files have the flag" \
        have_flag /usr/share/vmtest-share /usr/share/vmtest-share/data.txt /usr/share/man/man1/vmtest-share.1.gz
}

# A layer over /usr with a package installed by dpkg -i, kept across the
# reboot.
step_s3_setup() {
    local id
    lower_manifest /usr "${HASHED[@]}" >"$VM_STATE/s3.before"
    id=$(new_layer /usr)
    echo "$id" >"$VM_STATE/s3.id"
    vm_info s3.layer "layer new /usr: $(tr '\n' ' ' <"$VM_STATE/layer-new.out")"
    check s3.new "almost layer new /usr makes a layer mounted over /usr" is_overlay /usr
    check s3.dpkg "dpkg -i installs vmtest-layer into the layer" dpkg -i "$DEBS/vmtest-layer_1.0_all.deb"
}

# After the reboot: the layer is back; a commit now is refused (the layer is
# in use by processes started since almost-boot mounted it again), so it is
# committed at the next boot.
step_s3_remounted() {
    local id st=$VM_STATE out=$VM_STATE/s3.commit.out rc
    id=$(cat "$st/s3.id")
    check s3.listed "after the reboot the layer is listed (almost layer list)" sh -c "almost layer list | grep -q -- '$id'"
    check s3.mounted "after the reboot the layer is mounted over /usr again" is_overlay /usr
    check s3.visible "the package's files are visible through the layer" sh -c '/usr/bin/vmtest-layer | grep -q "vmtest-layer 1.0"'
    almost layer diff "$id" >"$st/s3.diff" 2>&1
    check s3.diff "almost layer diff lists /usr/bin/vmtest-layer and its data" \
        sh -c "grep -q /usr/bin/vmtest-layer '$st/s3.diff' && grep -q /usr/share/vmtest-layer/data.txt '$st/s3.diff'"
    vm_manifest /usr "${HASHED[@]}" >"$st/s3.after"
    almost layer commit "$id" --yes >"$out" 2>&1
    rc=$?
    vm_info s3.busy "almost layer commit: status $rc: $(tr '\n' ' ' <"$out" | head -c 400)"
    check s3.busy-refused "a commit now is refused with exit 8 (busy): processes started since the boot use the layer" \
        test "$rc" -eq 8
    check s3.busy-names "the refusal names the processes (dbus-daemon, systemd-logind or the stage's shell) and says --at-boot" \
        sh -c "grep -Eq 'dbus-daemon|systemd-logind|stage.sh|bash' '$out' && grep -q -- '--at-boot' '$out'"
    lower_manifest /usr "${HASHED[@]}" >"$st/s3.lower"
    check s3.busy-unchanged "the refused commit changed nothing: /usr beneath the layer equals /usr before it" \
        same_manifest "$st/s3.before" "$st/s3.lower"
    check_not s3.selftest-lower "(self-test) the tree beneath the layer is not the merged view (the manifests differ)" \
        same_manifest "$st/s3.after" "$st/s3.lower"
    check s3.busy-still-mounted "the layer is still listed and mounted" \
        sh -c "is_overlay() { findmnt -n -o FSTYPE --mountpoint \$1 | grep -qx overlay; }; is_overlay /usr && almost layer list | grep -q -- '$id'"
    check s3.at-boot "almost layer commit --at-boot succeeds" almost layer commit --at-boot "$id" --yes
    check s3.pending "almost layer list --json says \"pending\": \"commit\" for it" pending_is "$id" commit
    # For scenario 4, if this boot's successor is cut: the two trees.
    cp "$st/s3.before" "$st/cut.before"
    cp "$st/s3.after" "$st/cut.after"
    echo "$id" >"$st/cut.id"
    echo "${HASHED[*]}" >"$st/cut.hashed"
}

# The boot after: almost-boot committed the layer before anything started.
step_s3_committed() {
    local id pkg st=$VM_STATE
    id=$(cat "$st/s3.id")
    check s3.committed-no-layer "the layer is gone and nothing is mounted over /usr" no_layer
    check s3.committed-files "the committed command runs" sh -c '/usr/bin/vmtest-layer | grep -q "vmtest-layer 1.0"'
    lower_manifest /usr "${HASHED[@]}" >"$st/s3.lower"
    check s3.committed-equals "/usr equals what the layer showed before the reboot (manifest)" \
        same_manifest "$st/s3.after" "$st/s3.lower"
    check s3.committed-locked "the committed files have the flag" \
        have_flag /usr/bin/vmtest-layer /usr/share/vmtest-layer /usr/share/vmtest-layer/data.txt /usr/share/man/man1/vmtest-layer.1.gz
    check s3.committed-status "almost status --json says locked, no entry unlocked" locked_by_status
    for pkg in vmtest-layer vmtest-share; do
        check "s3.dpkg-L-$pkg" "dpkg -L $pkg agrees: every file it lists exists" \
            sh -c "dpkg -L $pkg | while read -r f; do [ -e \"\$f\" ] || { echo \"missing: \$f\"; exit 1; }; done"
        check "s3.dpkg-verify-$pkg" "dpkg --verify $pkg finds no changed file" dpkg --verify "$pkg"
    done
    # (In this boot or the one cut short; not the --at-boot command's own
    # audit entry.)
    check s3.committed-journal "the journal has almost boot's entry of layer $id (its commit at boot, or the recovery of a commit a power cut interrupted; not an audit entry)" \
        sh -c "journalctl -t almost -o cat --no-pager | grep -- '$id' | grep -v '(uid ' | grep -q ."
    vm_info s3.committed-journal "$(journalctl -t almost -o cat --no-pager | grep -- "$id" | grep -v '(uid ' | head -n 3 | tr '\n' ' ')"
}

# A layer over /usr with changes of every kind, to be discarded at the next
# boot.
step_s3_discard_setup() {
    local id st=$VM_STATE
    lower_manifest /usr "${HASHED[@]}" >"$st/s3d.before"
    id=$(new_layer /usr)
    echo "$id" >"$st/s3d.id"
    check s3.discard-new "a layer over /usr is made" is_overlay /usr
    {
        echo new >/usr/bin/vmtest-discard-new
        echo changed >>/usr/share/vmtest-share/data.txt
        rm -f /usr/share/doc/vmtest-share/copyright
        rm -rf /usr/share/vmtest-layer
        mkdir -p /usr/share/vmtest-discard/dir
        echo x >/usr/share/vmtest-discard/dir/file
        chmod 700 /usr/bin/vmtest-layer
        ln -s vmtest-layer /usr/bin/vmtest-discard-link
    } >/dev/null 2>&1
    check s3.discard-visible "the changes show through the layer" test -e /usr/bin/vmtest-discard-new
    check s3.discard-at-boot "almost layer discard --at-boot succeeds" almost layer discard --at-boot "$id" --yes
    check s3.discard-pending "almost layer list --json says \"pending\": \"discard\" for it" pending_is "$id" discard
}

step_s3_discarded() {
    local id st=$VM_STATE
    id=$(cat "$st/s3d.id")
    check s3.discarded-no-layer "after the reboot the layer is gone and nothing is mounted over /usr" no_layer
    lower_manifest /usr "${HASHED[@]}" >"$st/s3d.after"
    check s3.discarded-equals-before "/usr equals its manifest from before the layer" \
        same_manifest "$st/s3d.before" "$st/s3d.after"
    check s3.discarded-journal "the journal has almost boot's discard of layer $id" \
        sh -c "journalctl -t almost -b -o cat --no-pager | grep -- '$id' | grep -v '(uid ' | grep -qi discard"
    check s3.discarded-no-failed "systemctl --failed is empty" no_failed_units
}

# --- scenario 4: power cuts ------------------------------------------------------

# The tree the cuts change: made once, through almost run.
cut_tree() {
    local base=/usr/share/vmtest-cut
    [[ -d $base ]] && return 0
    almost run -- sh -c "mkdir -p $base/keep $base/mod $base/del $base/dir && for i in \$(seq 1 300); do echo \"file \$i\" >$base/mod/f\$i; echo \"keep \$i\" >$base/keep/k\$i; echo \"del \$i\" >$base/del/d\$i; done && echo x >$base/dir/x" >/dev/null 2>&1
}

# cut_layer DIR: a layer over DIR with changes of every kind under
# /usr/share/vmtest-cut: modified, added (3000 files of 4 KiB, a symlink),
# deleted, a directory replaced by a file. The trees before and after in
# cut.before and cut.after; the layer's id in cut.id.
cut_layer() {
    local dir=$1 base=/usr/share/vmtest-cut id n i st=$VM_STATE
    cut_tree
    n=$(($(cat "$st/cut.round" 2>/dev/null || echo 0) + 1))
    echo "$n" >"$st/cut.round"
    echo "${CUT_HASHED[*]}" >"$st/cut.hashed"
    lower_manifest /usr "${CUT_HASHED[@]}" >"$st/cut.before"
    id=$(new_layer "$dir")
    if [[ -z $id ]]; then
        vm_fail "s4.$n-layer-new" "almost layer new $dir" "$st/layer-new.out"
        echo >"$st/cut.id"
        return 0
    fi
    for i in $(seq 1 300); do echo "round $n" >>"$base/mod/f$i"; done
    mkdir -p "$base/new$n"
    head -c $((3000 * 4096)) /dev/urandom | split -b 4096 -a 4 - "$base/new$n/n"
    ln -sfn ../keep/k1 "$base/new$n/link"
    rm -f "$base"/del/d*
    if [[ -d $base/dir ]]; then
        rm -rf "$base/dir" && echo "file now" >"$base/dir"
    else
        rm -f "$base/dir" && mkdir "$base/dir" && echo y >"$base/dir/y"
    fi
    vm_manifest /usr "${CUT_HASHED[@]}" >"$st/cut.after"
    vm_info s4.round "$n: layer $id over $dir, $(diff "$st/cut.before" "$st/cut.after" | grep -c '^[<>]') manifest lines differ"
    echo "$id" >"$st/cut.id"
}

# A layer over /usr committed at the next boot (which the host cuts).
step_s4_at_boot_setup() {
    local id
    cut_layer /usr
    id=$(cat "$VM_STATE/cut.id")
    check s4.at-boot "almost layer commit --at-boot of the layer over /usr" almost layer commit --at-boot "$id" --yes
}

# A layer over /usr/share committed now; the host cuts the power some time
# after the mark.
step_s4_cut_commit() {
    local id out=$VM_STATE/cut.out
    cut_layer /usr/share
    id=$(cat "$VM_STATE/cut.id")
    vm_mark commit-start
    almost layer commit "$id" --yes >"$out" 2>&1
    vm_mark commit-done
    vm_info s4.uncut "the commit ended before the power cut: $(tail -n 1 "$out")"
}

# The boot after a power cut.
step_s4_check() {
    local st=$VM_STATE n
    n=$(cat "$st/cut.round" 2>/dev/null || echo s3)
    wait_boot_finished
    check "s4.$n-no-failed-units" "round $n: the boot after the cut reached multi-user, systemctl --failed is empty" no_failed_units
    check "s4.$n-boot-unit" "round $n: almost-boot.service succeeded" \
        sh -c 'systemctl show -P Result almost-boot.service | grep -qx success'
    journalctl -b -t almost -o cat --no-pager | tail -n 6 | sed 's/^/  | almost: /'
    check_not "s4.$n-selftest" "(self-test) the trees before and after the layer differ (the check below can fail)" \
        same_manifest "$st/cut.before" "$st/cut.after"
    local -a hashed
    read -r -a hashed <"$st/cut.hashed"
    lower_manifest /usr "${hashed[@]}" >"$st/cut.now"
    local id result=mix
    id=$(cat "$st/cut.id" 2>/dev/null)
    if cmp -s "$st/cut.after" "$st/cut.now"; then
        result=finished
        vm_pass "s4.$n-converged" "round $n: /usr (the root filesystem's own tree) equals the committed layer exactly (commit finished)"
    elif cmp -s "$st/cut.before" "$st/cut.now"; then
        result=rolled-back
        vm_pass "s4.$n-converged" "round $n: /usr (the root filesystem's own tree) equals the tree before the layer exactly (commit rolled back)"
    else
        diff "$st/cut.after" "$st/cut.now" | head -n 15 >"$st/cut.diff"
        vm_fail "s4.$n-converged" "round $n: /usr is neither the committed layer nor the tree before it (a mix)" "$st/cut.diff"
    fi
    if [[ $result == rolled-back ]] && almost layer list 2>/dev/null | grep -q -- "$id"; then
        # Rolled back: the layer is back as it was, its changes kept.
        local dir
        dir=$(almost layer list 2>/dev/null | awk -v id="$id" '$1 == id {print $2}')
        vm_manifest /usr "${hashed[@]}" >"$st/cut.merged"
        check "s4.$n-layer-kept" "round $n: the layer $id is mounted over $dir again with its changes (the merged view equals the layer before the cut)" \
            sh -c "findmnt -n -o FSTYPE --mountpoint '$dir' | grep -qx overlay && cmp -s '$st/cut.after' '$st/cut.merged'"
        # Thrown away, so that the next round starts without a layer: now
        # if nothing uses it, else at the next boot.
        if almost layer discard "$id" --yes >/dev/null 2>&1; then
            vm_info "s4.$n-layer-kept" "discarded"
        else
            almost layer discard --at-boot "$id" --yes >/dev/null 2>&1
            vm_info "s4.$n-layer-kept" "busy: discarded at the next boot"
        fi
    else
        check "s4.$n-no-layer" "round $n: no layer and no overlay left" no_layer
    fi
    check "s4.$n-locked" "round $n: locked, no interrupted commit left (almost status --json: every entry locked)" locked_by_status
}

# --- scenario 5: default_mode ---------------------------------------------------

step_s5_set_unlocked() {
    check s5.set-unlocked "almost config set default_mode unlocked" almost config set default_mode unlocked
}
step_s5_unlocked() {
    check s5.unlocked "default_mode = unlocked: after the reboot almost status --json says unlocked, no entry locked" \
        unlocked_by_status
    # The status checks must be able to fail: on this unlocked system the
    # locked one does.
    check_not s5.selftest-locked-check "(self-test) the locked-by-status check fails on this unlocked system" \
        locked_by_status
    check s5.unlocked-no-failed "systemctl --failed is empty" no_failed_units
}
step_s5_set_keep() {
    check s5.set-keep "almost config set default_mode keep" almost config set default_mode keep
}
step_s5_keep_unlocked() {
    check s5.keep-unlocked "default_mode = keep after an unlocked boot: still unlocked, no entry locked" \
        unlocked_by_status
}
step_s5_keep_locked() {
    check s5.keep-locked "default_mode = keep after almost lock and a reboot: locked, every entry" locked_by_status
    check s5.back-to-locked "almost config set default_mode locked" almost config set default_mode locked
}

# --- scenario 6: offline update ------------------------------------------------

# A prepared offline update and a test updater ordered like PackageKit's
# packagekit-offline-update.service.
step_s6_prepare() {
    cp "$VM_DIR/almost-vm-updater.service" /etc/systemd/system/
    mkdir -p /etc/systemd/system/system-update.target.wants
    ln -sfn ../almost-vm-updater.service /etc/systemd/system/system-update.target.wants/almost-vm-updater.service
    ln -sfn /var/cache/almost-vm-update /system-update
    mkdir -p /var/cache/almost-vm-update
    check s6.prepared "/system-update points at the prepared update" test -L /system-update
}

# After the offline update's reboot: first what the updater found.
step_s6_done() {
    if [[ -s $VM_STATE/updater.out ]]; then
        grep -a '^VMT \|^  | ' "$VM_STATE/updater.out" | grep -v '^VMT END'
    fi
    check s6.updater-ended "the test updater ran to its end in the offline update boot" \
        grep -q '^VMT END offline-update' "$VM_STATE/updater.out"
    check s6.updated-file "the file the offline update wrote into /usr is there" \
        sh -c 'grep -q "offline update" /usr/share/vmtest-offline/updated'
    check s6.no-system-update "/system-update is gone" test ! -e /system-update
    check s6.locked-again "the boot after the offline update is locked again (almost status --json)" locked_by_status
    check s6.updated-file-locked "the updated file has the flag" have_flag /usr/share/vmtest-offline/updated
    check s6.no-failed-units "systemctl --failed is empty" no_failed_units
    check s6.offline-unit-ran "the previous boot ran almost-offline-update.service" \
        sh -c 'journalctl -b -1 -u almost-offline-update.service -o cat --no-pager | grep -q .'
    vm_info s6.previous-boot "$(journalctl -b -1 -t almost -o cat --no-pager | tail -n 2 | tr '\n' ' ')"
}

# --- scenarios 2, 7, 8 (no reboot needed) -------------------------------------


# Scenario 2: the apt guard, then almost run -- apt-get install.
step_s2() {
    local out=$VM_STATE/apt.out
    "${APT[@]}" install "$DEBS/vmtest-hello_1.0_all.deb" >"$out" 2>&1
    local rc=$?
    check s2.guard-fails "apt-get install on the locked system fails (status $rc)" test "$rc" -ne 0
    check s2.guard-message "apt stops with the guard's message (almost run ...)" grep -qi 'almost' "$out"
    check s2.guard-before-dpkg "dpkg did not start (no 'Unpacking' in apt's output)" sh -c "! grep -q '^Unpacking' '$out'"
    vm_info s2.guard-output "$(grep -iv '^\(Reading\|Building\|Note\|Selecting\|The following\|Need to\|After this\|Get:\|  \)' "$out" | head -n 4 | tr '\n' ' ')"
    check_not s2.nothing-installed "nothing installed (dpkg -s vmtest-hello)" dpkg -s vmtest-hello
    check_not s2.no-file "no file of the package in /usr/bin" test -e /usr/bin/vmtest-hello

    local mtime_before
    mtime_before=$(stat -c %Y /var/cache/man/index.db 2>/dev/null || echo 0)
    almost run -- "${APT[@]}" install "$DEBS/vmtest-hello_1.0_all.deb" >"$out" 2>&1
    rc=$?
    check s2.run-installs "almost run -- apt-get install succeeds (status $rc)" test "$rc" -eq 0
    [[ $rc -eq 0 ]] || sed 's/^/  | /' "$out" | tail -n 20
    check s2.installed "dpkg says vmtest-hello is installed" \
        sh -c 'dpkg-query -W -f="\${Status}" vmtest-hello | grep -qx "install ok installed"'
    check s2.runs "the new command runs" sh -c '/usr/bin/vmtest-hello | grep -q "vmtest-hello 1.0"'
    check s2.trigger-ran "the man-db trigger ran (apt's output)" grep -q 'Processing triggers for man-db' "$out"
    check s2.man-indexed "man-db's index knows the new page (whatis vmtest-hello)" whatis vmtest-hello
    vm_info s2.man-index "index.db mtime before $mtime_before, after $(stat -c %Y /var/cache/man/index.db 2>/dev/null)"
    check s2.locked-again "almost status --json says locked after almost run, every entry (the new files too)" locked_by_status
    check s2.new-files-locked "the new files have the flag" \
        have_flag /usr/bin/vmtest-hello /usr/share/man/man1/vmtest-hello.1.gz /usr/share/vmtest-hello /usr/share/vmtest-hello/data.txt
}

# Scenario 7: pkexec as a user, through the real system bus and polkitd.
step_s7() {
    local rule=/etc/polkit-1/rules.d/50-almost-vm.rules out=$VM_STATE/pkexec.out rc actions
    actions=$(pkaction 2>/dev/null | grep '^org\.almost\.' | tr '\n' ' ')
    vm_info s7.actions "$actions"
    local act
    for act in lock unlock layer config; do
        check "s7.action-$act" "pkaction --verbose: org.almost.$act is for /usr/bin/almost with argv1 $act" \
            sh -c "pkaction --verbose --action-id org.almost.$act | grep -q 'org.freedesktop.policykit.exec.path.*/usr/bin/almost' &&
                pkaction --verbose --action-id org.almost.$act | grep -Eq 'org.freedesktop.policykit.exec.argv1.*-> *$act\$'"
    done
    check s7.actions-only-four "no other org.almost action (a catch-all would be picked for any command line)" \
        test "$(pkaction | grep -c '^org\.almost\.')" -eq 4
    rm -f "$rule"
    systemctl restart polkit.service

    runuser -u tester -- pkexec /usr/bin/almost unlock --yes </dev/null >"$out" 2>&1
    rc=$?
    check s7.refused "without a rule, pkexec almost unlock as tester is refused (status $rc, 126/127)" \
        sh -c "[ $rc -eq 127 ] || [ $rc -eq 126 ]"
    check s7.refused-unchanged "(and the system stays locked: the flag on /usr/bin and /usr/bin/almost)" have_flag /usr/bin /usr/bin/almost

    {
        echo '// The Almost VM rig: tester may do what almost asks polkit for.'
        echo 'polkit.addRule(function (action, subject) {'
        echo '    if (action.id.indexOf("org.almost.") == 0 && subject.user == "tester") {'
        echo '        return polkit.Result.YES;'
        echo '    }'
        echo '});'
    } >"$rule"
    systemctl restart polkit.service
    local since
    since=$(date '+%Y-%m-%d %H:%M:%S')
    sleep 1
    runuser -u tester -- pkexec /usr/bin/almost unlock --yes </dev/null >"$out" 2>&1
    rc=$?
    check s7.unlock "with the rule, pkexec almost unlock --yes as tester works (status $rc)" test "$rc" -eq 0
    [[ $rc -eq 0 ]] || sed 's/^/  | /' "$out" | tail -n 5
    check s7.unlocked "the system is unlocked (almost status)" status_is unlocked
    check s7.unlocked-flags "no entry of /usr/bin has the flag (lsattr)" none_locked /usr/bin
    runuser -u tester -- pkexec /usr/bin/almost lock </dev/null >"$out" 2>&1
    rc=$?
    check s7.lock "pkexec almost lock as tester works (status $rc)" test "$rc" -eq 0
    check s7.locked "locked again (almost status, the flag on /usr/bin/almost)" \
        sh -c 'almost status | head -n 3 | grep -qiw locked && lsattr -d /usr/bin/almost | grep -q "^[^ ]*i"'
    # almost run executes a program of the caller's choosing: no action is
    # for it (pkexec's generic one asks for the administrator), and almost
    # refuses it under pkexec anyway (exit 12), also when polkit says yes.
    runuser -u tester -- pkexec /usr/bin/almost run -- id </dev/null >"$out" 2>&1
    rc=$?
    check s7.run-refused "pkexec almost run -- id as tester is refused (status $rc: 12 from almost or 127 from pkexec) and prints no uid=0" \
        sh -c "{ [ $rc -eq 12 ] || [ $rc -eq 127 ]; } && ! grep -q 'uid=0' '$out'"
    {
        echo '// The Almost VM rig: tester may run anything through pkexec.'
        echo 'polkit.addRule(function (action, subject) {'
        echo '    if (subject.user == "tester") { return polkit.Result.YES; }'
        echo '});'
    } >"$rule"
    systemctl restart polkit.service
    runuser -u tester -- pkexec /usr/bin/almost run -- id </dev/null >"$out" 2>&1
    rc=$?
    check s7.run-refused-by-almost "even with polkit saying yes to everything, almost refuses pkexec almost run -- id (status $rc, 12) and prints no uid=0" \
        sh -c "[ $rc -eq 12 ] && ! grep -q 'uid=0' '$out'"
    [[ $rc -eq 12 ]] || sed 's/^/  | /' "$out" | tail -n 5
    local uid
    uid=$(id -u tester)
    journalctl -t almost --since "$since" -o cat --no-pager >"$VM_STATE/pkexec.journal"
    check s7.journal-names-user "the journal entries name the user (tester or uid $uid)" \
        grep -Eq "tester|uid[ =:]*$uid\\b" "$VM_STATE/pkexec.journal"
    vm_info s7.journal "$(head -n 2 "$VM_STATE/pkexec.journal" | tr '\n' ' ')"
    rm -f "$rule"
    systemctl try-reload-or-restart polkit.service --no-block
}

# Scenario 8: upgrade while locked, remove, purge.
step_s8() {
    local out=$VM_STATE/upgrade.out rc up
    up=$(ls "$DEBS"/almost_*_upgrade.deb)
    local newv
    newv=$(dpkg-deb -f "$up" Version)
    check s8.locked-before "the system is locked before the upgrade (the flag on /usr/bin/almost)" have_flag /usr/bin/almost
    almost run -- "${APT[@]}" install "$up" >"$out" 2>&1
    rc=$?
    check s8.upgrade "almost run -- apt-get install ./almost_$newv.deb succeeds (status $rc)" test "$rc" -eq 0
    [[ $rc -eq 0 ]] || sed 's/^/  | /' "$out" | tail -n 20
    check s8.upgraded "dpkg says almost $newv is installed" \
        sh -c "dpkg-query -W -f='\${Version} \${Status}' almost | grep -qx '$newv install ok installed'"
    check s8.locked-after-upgrade "the system is locked after the upgrade, every entry (almost status --json)" locked_by_status
    check s8.new-binary-locked "almost's new binary has the flag" have_flag /usr/bin/almost
    check s8.unit-enabled-after-upgrade "almost-boot.service is still enabled" systemctl is-enabled almost-boot.service

    almost run -- "${APT[@]}" remove almost >"$out" 2>&1
    rc=$?
    check s8.remove "almost run -- apt-get remove -y almost succeeds (status $rc)" test "$rc" -eq 0
    [[ $rc -eq 0 ]] || sed 's/^/  | /' "$out" | tail -n 20
    check s8.removed "dpkg says almost is removed" \
        sh -c "! dpkg-query -W -f='\${Status}' almost | grep -q 'install ok installed'"
    check s8.no-hook-after-remove "the apt hook is gone after the removal (or does nothing)" \
        sh -c '! test -e /etc/apt/apt.conf.d/80almost || ! test -x /usr/bin/almost'
    "${APT[@]}" purge almost >"$out" 2>&1
    rc=$?
    check s8.purge "apt-get purge -y almost succeeds (status $rc)" test "$rc" -eq 0
    [[ $rc -eq 0 ]] || sed 's/^/  | /' "$out" | tail -n 20
    check s8.no-flag "no entry of /usr nor /opt has the immutable flag (lsattr -R)" none_locked /usr /opt
    check s8.no-unit "no almost unit is left (files, enablement links, systemctl list-unit-files; the rig's own almost-vm-* units aside)" \
        sh -c '! ls -d /usr/lib/systemd/system/almost* /lib/systemd/system/almost* /etc/systemd/system/almost* /etc/systemd/system/*/almost* 2>/dev/null | grep -v almost-vm- && ! systemctl list-unit-files --no-legend | grep almost | grep -v almost-vm-'
    check s8.no-hook "the apt hook is gone" test ! -e /etc/apt/apt.conf.d/80almost
    check s8.no-config "purge removed /etc/almost" test ! -e /etc/almost
    check s8.no-state "purge removed /var/lib/almost" test ! -e /var/lib/almost
    check s8.no-binary "/usr/bin/almost is gone" test ! -e /usr/bin/almost
    "${APT[@]}" install "$DEBS/vmtest-after_1.0_all.deb" >"$out" 2>&1
    rc=$?
    check s8.plain-apt "plain apt-get install ./pkg.deb works again (status $rc)" test "$rc" -eq 0
    [[ $rc -eq 0 ]] || sed 's/^/  | /' "$out" | tail -n 20
    check s8.plain-apt-runs "the package's command runs" sh -c '/usr/bin/vmtest-after | grep -q 1.0'
    check s8.plain-apt-unflagged "its files have no flag" none_locked /usr/share/vmtest-after /usr/bin/vmtest-after
}

# --- scenario 9: a system layer with real apt (issue 14) --------------------

# What a system layer must keep coherent: the conffile, the unit link
# deb-systemd-helper makes in /etc, its record under /var/lib/systemd and
# dpkg's database (status hashed: a change anywhere in it shows).
S9_ETC=(/etc/vmtest-conf.conf /etc/systemd/system)
S9_DPKG=(/var/lib/dpkg/status)
S9_HELPER=/var/lib/systemd/deb-systemd-helper-enabled
S9_DEB=vmtest-conf_1.0_all.deb
# s9_manifests NAME: the manifests of /etc, the dpkg database, the
# deb-systemd-helper records and /usr, in $VM_STATE/s9.NAME.*.
# dpkg's lock files are opened for writing and left as they were: in a
# layer they are copied up with new times only, which is not a change
# (not listed, not committed: docs/almost.md), so their times are left out.
s9_manifests() {
    vm_manifest /etc "${S9_ETC[@]}" >"$VM_STATE/s9.$1.etc"
    vm_manifest /var/lib/dpkg "${S9_DPKG[@]}" |
        awk -F'\t' 'BEGIN {OFS = "\t"} $6 ~ /\/(lock|lock-frontend|triggers\/Lock)$/ {$5 = "-"} {print}' \
            >"$VM_STATE/s9.$1.dpkg"
    vm_manifest "$S9_HELPER" >"$VM_STATE/s9.$1.helper"
    vm_manifest /usr /usr/bin >"$VM_STATE/s9.$1.usr"
}
# s9_same A B: every manifest of A equals B's.
s9_same() {
    local part ok=0
    for part in etc dpkg helper usr; do
        same_manifest "$VM_STATE/s9.$1.$part" "$VM_STATE/s9.$2.$part" >"$VM_STATE/s9.cmp" || {
            echo "$part differs:"
            cat "$VM_STATE/s9.cmp"
            ok=1
        }
    done
    return "$ok"
}
# No overlay is mounted (findmnt -t exits 0 also when nothing matches).
no_overlay() {
    findmnt -n -t overlay
    ! findmnt -n -t overlay | grep -q .
}
not_installed() { ! dpkg-query -W -f='${Status}' vmtest-conf 2>/dev/null | grep -q 'ok installed'; }
is_installed() { dpkg-query -W -f='${Status}' vmtest-conf | grep -qx 'install ok installed'; }
# The package's traces outside /usr are all gone.
no_traces() {
    test ! -e /etc/vmtest-conf.conf &&
        test ! -e /etc/systemd/system/multi-user.target.wants/vmtest-conf.service &&
        ! find "$S9_HELPER" -name 'vmtest-conf*' | grep -q . &&
        test ! -e /usr/bin/vmtest-conf
}
# dpkg --audit says nothing (no half-installed or unconfigured package).
audit_clean() {
    local out
    out=$(dpkg --audit 2>&1)
    echo "$out" | head -n 5
    [[ -z $out ]]
}
# A system layer: its id (the last word of `almost layer new --system`).
new_system_layer() {
    local out=$VM_STATE/layer-new.out
    almost layer new --system >"$out" 2>&1 || {
        sed 's/^/  | /' "$out" | tail -n 10
        return 0
    }
    tail -n 1 "$out" | awk '{print $NF}'
}
# After a failure: every layer still there is discarded (unmounted lazily
# first), so the steps after this one start from a system without a layer.
s9_cleanup() {
    local id mnt
    for id in $(almost layer list --json 2>/dev/null | grep -o '"id": *"[0-9a-f]*"' | grep -o '[0-9a-f]\{4,\}'); do
        vm_info s9.cleanup "after the failure: almost layer discard $id"
        almost layer discard "$id" --yes >/dev/null 2>&1 && continue
        for mnt in $(findmnt -n -t overlay -o TARGET); do umount -l "$mnt"; done
        almost layer discard "$id" --yes >/dev/null 2>&1 || vm_info s9.cleanup "the discard failed too"
    done
}
# install_through ID: plain apt-get installs the package into the open
# system layer (the apt guard lets it through).
install_through() {
    local out=$VM_STATE/s9-apt.out rc
    "${APT[@]}" install "$DEBS/$S9_DEB" >"$out" 2>&1
    rc=$?
    [[ $rc -eq 0 ]] || sed 's/^/  | /' "$out" | tail -n 20
    return "$rc"
}

# systemd-udevd loads its hardware database again from a layer over /usr
# at a device event (core/src/layer/busy.rs says why): what made CI's
# discard of a system layer refused as busy. Device events (udevd looks
# at most every 3 s) until its main process holds a file of the overlay
# mounted on /usr (an open file: a mapping of an overlay file shows the
# file beneath): the hold almost must release.
udevd_fds_on_usr() {
    local pid=$1 dev fd
    dev=$(stat -c %d /usr)
    for fd in /proc/"$pid"/fd/*; do
        [[ $(stat -L -c %d "$fd" 2>/dev/null) == "$dev" ]] && readlink "$fd"
    done
}
udevd_loads_from_layer() {
    local pid held i
    pid=$(systemctl show -p MainPID --value systemd-udevd.service)
    for i in 1 2 3 4; do
        udevadm trigger --action=change --subsystem-match=mem
        udevadm settle -t 10
        held=$(udevd_fds_on_usr "$pid")
        if [[ -n $held ]]; then
            echo "$held"
            return 0
        fi
        sleep 3.5
    done
    echo "udevd ($pid) holds nothing of /usr's overlay after 4 device events; its fds:"
    ls -l "/proc/$pid/fd" | tail -n +2
    return 1
}
# almost -v (says whether it asked udevd to let go); on a failure, what
# udevd holds then.
almost_releasing() {
    local pid rc
    # (No pipe: a program started now runs from the layer and holds it.)
    almost -v "$@"
    rc=$?
    if ((rc != 0)); then
        pid=$(systemctl show -p MainPID --value systemd-udevd.service)
        echo "udevd ($pid): $(tr -d '\n' <"/proc/$pid/comm"), $(readlink "/proc/$pid/exe"), $(grep Uid "/proc/$pid/status")"
        udevd_fds_on_usr "$pid"
        journalctl -b -u systemd-udevd --no-pager | tail -n 5
    fi
    return "$rc"
}

# On the locked system: a system layer, the package installed by plain apt,
# discarded (dpkg no longer knows it, /etc and /var/lib as before); again,
# committed (dpkg --verify clean, the conffile there, /usr locked, /etc not);
# then the commit undone (the database back too).
step_s9() {
    local id rc
    s9_manifests before
    check s9.helper-present "(deb-systemd-helper is in the image: the postinst uses it)" command -v deb-systemd-helper

    id=$(new_system_layer)
    check s9.new "almost layer new --system makes a layer over /usr, /etc and /var/lib/dpkg (overlay mounts)" \
        sh -c "[ -n '$id' ] && findmnt -n --mountpoint /usr -t overlay && findmnt -n --mountpoint /etc -t overlay && findmnt -n --mountpoint /var/lib/dpkg -t overlay"
    vm_info s9.parts "$(almost layer list 2>&1 | head -n 8 | tr '\n' ' ')"
    check s9.apt-through-guard "plain apt-get install works while a system layer is open (the guard lets it in)" install_through
    check s9.installed-in-layer "dpkg says vmtest-conf is installed (in the layer)" is_installed
    check s9.conffile-in-layer "the conffile is there (in the layer)" grep -q 'vmtest-conf 1.0' /etc/vmtest-conf.conf
    check s9.diff-parts "layer diff names changes in /usr, /etc and /var/lib/dpkg" \
        sh -c "almost layer diff '$id' >'$VM_STATE/s9.diff' 2>&1; grep -q /usr/bin/vmtest-conf '$VM_STATE/s9.diff' && grep -q /etc/vmtest-conf.conf '$VM_STATE/s9.diff' && grep -q /var/lib/dpkg '$VM_STATE/s9.diff'"
    check s9.udevd-holds "after a device event systemd-udevd maps its hardware database from the layer" udevd_loads_from_layer
    check s9.discard "almost layer discard of the system layer works (udevd asked to let go)" almost_releasing layer discard "$id" --yes
    check s9.discard-no-mount "no overlay left after the discard" no_overlay
    check s9.discard-dpkg "after the discard dpkg no longer knows vmtest-conf (dpkg -s)" not_installed
    check s9.discard-traces "the conffile, the unit link in /etc and deb-systemd-helper's record are gone" no_traces
    check s9.discard-audit "dpkg --audit is clean" audit_clean
    s9_manifests discarded
    check s9.discard-same "/etc, /var/lib/dpkg, deb-systemd-helper's records and /usr equal their manifests from before" \
        s9_same before discarded
    check s9.discard-locked "still locked (almost status --json)" locked_by_status
    if ! no_overlay >/dev/null || almost layer list 2>/dev/null | grep -q '/'; then s9_cleanup; fi

    id=$(new_system_layer)
    check s9.new-again "a second system layer" sh -c "[ -n '$id' ] && findmnt -n --mountpoint /etc -t overlay"
    check s9.apt-again "apt-get install into it" install_through
    s9_manifests merged
    check s9.udevd-holds-again "systemd-udevd maps its hardware database from the second layer" udevd_loads_from_layer
    check s9.commit "almost layer commit of the system layer works (udevd asked to let go)" almost_releasing layer commit "$id" --yes
    check s9.commit-no-mount "no overlay left after the commit" no_overlay
    check s9.commit-installed "after the commit dpkg says vmtest-conf is installed" is_installed
    check s9.commit-verify "dpkg --verify vmtest-conf is clean" sh -c '[ -z "$(dpkg --verify vmtest-conf 2>&1)" ]'
    check s9.commit-conffile "the conffile is there" grep -q 'vmtest-conf 1.0' /etc/vmtest-conf.conf
    check s9.commit-enabled "the unit is enabled (deb-systemd-helper's link in /etc)" \
        test -L /etc/systemd/system/multi-user.target.wants/vmtest-conf.service
    check s9.commit-runs "the command runs and reads its conffile" sh -c '/usr/bin/vmtest-conf | grep -q "vmtest-conf 1.0"'
    s9_manifests committed
    check s9.commit-same "what the layer showed is what the system has now (manifests)" s9_same merged committed
    check s9.commit-usr-locked "the new files in /usr have the flag" have_flag /usr/bin/vmtest-conf /usr/lib/systemd/system/vmtest-conf.service
    check_not s9.commit-etc-unlocked "/etc is never locked: the conffile has no flag" have_flag /etc/vmtest-conf.conf
    check s9.commit-locked "locked (almost status --json)" locked_by_status
    no_overlay >/dev/null || s9_cleanup

    almost layer undo --yes >"$VM_STATE/s9-undo.out" 2>&1
    rc=$?
    check s9.undo "almost layer undo of that commit works (status $rc)" test "$rc" -eq 0
    [[ $rc -eq 0 ]] || sed 's/^/  | /' "$VM_STATE/s9-undo.out" | tail -n 10
    check s9.undo-dpkg "after the undo dpkg no longer knows vmtest-conf" not_installed
    check s9.undo-traces "the conffile, the unit link and the records are gone again" no_traces
    check s9.undo-audit "dpkg --audit is clean" audit_clean
    s9_manifests undone
    check s9.undo-same "/etc, /var/lib/dpkg, the records and /usr equal their manifests from before" s9_same before undone
    check s9.undo-locked "locked (almost status --json)" locked_by_status
}

# --- main -------------------------------------------------------------------

vm_info stage "$NAME: steps $STEPS (kernel $(uname -r))"
if [[ -e $VM_DIR/profile ]]; then
    wait_boot_finished
    vm_info profile "$(systemd-analyze 2>&1 | head -n 1)"
    systemd-analyze blame --no-pager 2>&1 | head -n 15 | sed 's/^/  | /'
    systemd-analyze critical-chain --no-pager almost-vm-stage.service 2>&1 | tail -n +3 | sed 's/^/  | /'
fi
for s in ${STEPS//,/ }; do
    [[ $s == - ]] && continue
    f=step_${s//-/_}
    if declare -F "$f" >/dev/null; then
        t0=$SECONDS
        "$f"
        vm_info "time.$s" "$((SECONDS - t0)) s"
    else
        vm_fail stage "unknown step $s"
    fi
done
vm_end "$NAME"
