#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# One boot of the VM rig, inside the guest (run by almost-vm-stage.service
# once the guest has booted; never on the host). The host says what to do
# on the kernel command line:
#   almost_vm.verify=STAGE    the checks of this boot (what the last boot set up)
#   almost_vm.inboot=N,N      scenarios that need no reboot (2 apt, 7 polkit, 8 upgrade)
#   almost_vm.prepare=STAGE   what to change for the next boot
#   almost_vm.scenarios=N,N   the scenarios of the run
# Results go to stdout (the second serial port) as lib.sh describes; the
# last line is "VMT END <verify stage>", then the guest powers off.

set -uo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8
# shellcheck source=tests/vm/guest/lib.sh
. /root/vm/lib.sh

arg() { sed -n "s/.*almost_vm\.$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
VERIFY=$(arg verify)
PREPARE=$(arg prepare)
INBOOT=$(arg inboot)
SCENARIOS=$(arg scenarios)
NAME=$(arg name)
want() { [[ ,$SCENARIOS, == *,$1,* ]]; }

DEBS=$VM_DIR/debs
# Where the layer scenarios change things (their manifests hash these files).
S3_HASHED=(/usr/bin /usr/share/vmtest-hello /usr/share/vmtest-layer /usr/share/vmtest-share
    /usr/share/vmtest-discard /usr/share/doc/vmtest-hello /usr/share/doc/vmtest-layer
    /usr/share/doc/vmtest-share /usr/share/man/man1)
CUT_HASHED=(/usr/share/vmtest-cut)
APT=(apt-get -y -q -o Dpkg::Use-Pty=0)

# --- verify stages ----------------------------------------------------------

# The first boot: apt installs the package from its file (no network: its
# Depends must be in the image already). Installing locks nothing.
verify_install() {
    local out=$VM_STATE/install.out deb
    deb=$(ls "$DEBS"/almost_*.deb | grep -v _upgrade)
    vm_info install "$(dpkg-deb -f "$deb" Package Version Depends | tr '\n' ' ')"
    check s1.apt-install "apt-get install ./almost_*.deb succeeds with no network (its Depends are in the image)" \
        "${APT[@]}" install "$deb"
    check s1.dpkg-installed "dpkg says almost is installed" \
        sh -c 'dpkg-query -W -f="\${Status}" almost | grep -qx "install ok installed"'
    check s1.boot-unit-enabled "the package enabled almost-boot.service" systemctl is-enabled almost-boot.service
    check s1.install-locks-nothing "installing locked nothing (no immutable flag under /usr)" none_locked /usr
    # The lock check must be able to fail: here, before any lock, it does.
    check_not s1.selftest-all-locked "(self-test) the every-entry-locked check fails on the unlocked tree" all_locked
    check s1.hook-installed "the apt hook is installed" test -f /etc/apt/apt.conf.d/80almost
    vm_info s1.managed "managed: $(managed_paths | tr '\n' ' ')excluded: $(excluded_paths | tr '\n' ' ')"
    vm_info s1.polkit-actions "$(pkaction 2>/dev/null | grep -i almost | tr '\n' ' ')"
}

# Scenario 1: the boot after the install locked the managed trees.
verify_locked() {
    wait_boot_finished
    check s1.all-locked "every file and directory of the managed trees has the immutable flag (lsattr -R)" all_locked
    check_not s1.selftest-none-locked "(self-test) the no-flag check fails on the locked tree" none_locked /usr
    check s1.no-failed-units "systemctl --failed is empty" no_failed_units
    check s1.boot-unit-ran "almost-boot.service ran and succeeded in this boot" \
        sh -c 'systemctl show -P Result almost-boot.service | grep -qx success && systemctl is-active almost-boot.service'
    check_not s1.root-cannot-create "root cannot create a file in /usr/bin" touch /usr/bin/vm-probe
    check_not s1.probe-absent "(and no such file appeared)" test -e /usr/bin/vm-probe
    check s1.status-locked "almost status says locked" status_is locked
    check s1.journal-audit "the journal has this boot's audit entry of almost (journalctl -t almost -b)" \
        sh -c 'journalctl -b -t almost --no-pager -o cat | grep -q .'
    vm_info s1.journal "$(journalctl -b -t almost --no-pager -o cat | head -n 3 | tr '\n' ' ')"

    # The figures: the boot's lock (cold caches) beside chattr -R +i of the
    # same trees, both from an unlocked tree, in this guest.
    local blame entries t_lock t_chattr t_unlock p
    blame=$(systemd-analyze blame --no-pager 2>/dev/null | grep -w almost-boot.service | awk '{$NF=""; print}' | xargs)
    entries=$(flaggable_entries | wc -l)
    vm_info s1.blame "almost-boot.service: ${blame:-?} (systemd-analyze blame), $(unit_start_seconds almost-boot.service) s (unit start to end), $entries flaggable entries"
    almost unlock --yes >/dev/null 2>&1
    t_lock=$(secs_of almost lock)
    t_unlock=$(secs_of almost unlock --yes)
    # shellcheck disable=SC2046
    t_chattr=$(secs_of chattr -R -f +i $(managed_paths))
    # chattr -R knows nothing of the exclusions: clear them again.
    for p in $(excluded_paths); do
        [[ -e $p ]] && chattr -R -i "$p"
    done
    almost lock >/dev/null 2>&1
    vm_info s1.timing "warm caches: almost lock ${t_lock} s, almost unlock ${t_unlock} s, chattr -R +i ${t_chattr} s (same trees)"
    check s1.relocked "locked again after the timing runs (almost status)" status_is locked
}

# layer_install TAG DIR PKG: a layer over DIR, PKG installed into it with
# dpkg -i; the layer's id in $VM_STATE/TAG.id, the merged view's manifest
# in $VM_STATE/TAG.manifest.
layer_install() {
    local tag=$1 dir=$2 pkg=$3 id out=$VM_STATE/$1.new.out
    almost layer new "$dir" >"$out" 2>&1
    id=$(tail -n 1 "$out" | awk '{print $NF}')
    echo "$id" >"$VM_STATE/$tag.id"
    vm_info "s3.$tag" "layer new $dir: $(tr '\n' ' ' <"$out")"
    check "s3.$tag-new" "almost layer new $dir makes a layer mounted over $dir" \
        sh -c "findmnt -n -o FSTYPE --mountpoint $dir | grep -qx overlay"
    check "s3.$tag-dpkg" "dpkg -i installs $(basename "$pkg") into the layer" dpkg -i "$pkg"
    vm_manifest /usr "${S3_HASHED[@]}" >"$VM_STATE/$tag.manifest"
}

# layer_commit TAG DIR FILE: layer_install's layer is listed, mounted, its
# diff names FILE; it commits; /usr equals what it showed; all locked.
layer_commit() {
    local tag=$1 dir=$2 file=$3 id out=$VM_STATE/$1.commit.out t0 t1
    id=$(cat "$VM_STATE/$tag.id")
    check "s3.$tag-listed" "the layer is listed (almost layer list)" sh -c "almost layer list | grep -q -- '$id'"
    check "s3.$tag-mounted" "the layer is mounted over $dir" \
        sh -c "findmnt -n -o FSTYPE --mountpoint $dir | grep -qx overlay"
    check "s3.$tag-visible" "the package's files are visible through the layer" test -e "$file"
    almost layer diff "$id" >"$VM_STATE/$tag.diff" 2>&1
    check "s3.$tag-diff" "almost layer diff lists $file as added" grep -q -- "$file" "$VM_STATE/$tag.diff"
    t0=$EPOCHREALTIME
    check "s3.$tag-commit" "almost layer commit --yes succeeds" almost layer commit "$id" --yes
    t1=$EPOCHREALTIME
    if findmnt -n --mountpoint "$dir" >/dev/null; then
        # Evidence for the failure: the mount's propagation, and the
        # processes in other mount namespaces (services' sandboxes hold a
        # propagated copy of the layer's mount).
        vm_info "s3.$tag-busy" "$(findmnt -n -o TARGET,PROPAGATION --mountpoint "$dir" | tr '\n' ' '); other mount namespaces: $(
            init_ns=$(readlink /proc/1/ns/mnt)
            for p in /proc/[0-9]*; do
                ns=$(readlink "$p/ns/mnt" 2>/dev/null) || continue
                [[ $ns == "$init_ns" ]] || printf '%s(%s) ' "${p#/proc/}" "$(cat "$p/comm")"
            done
        )"
        layer_cleanup "$tag" "$dir" "$id"
    fi
    vm_info "s3.$tag-commit" "$(awk -v a="${t0/,/.}" -v b="${t1/,/.}" 'BEGIN {printf "%.2f", b - a}') s"
    check "s3.$tag-unmounted" "no overlay over $dir after the commit" sh -c "! findmnt -n --mountpoint $dir"
    vm_manifest /usr "${S3_HASHED[@]}" >"$VM_STATE/$tag.after.manifest"
    check "s3.$tag-equals-merged" "/usr after the commit equals what the layer showed (manifest)" \
        same_manifest "$VM_STATE/$tag.manifest" "$VM_STATE/$tag.after.manifest"
    check "s3.$tag-locked" "the committed file has the immutable flag" have_flag "$file"
}

# After a failed commit or discard (the failure is recorded): lazy unmount
# and discard of the unmounted layer, so that the scenarios after this one
# start from a system without a layer.
layer_cleanup() {
    local tag=$1 dir=$2 id=$3
    vm_info "s3.$tag-cleanup" "after the failure: umount -l $dir, almost layer discard $id"
    umount -l "$dir"
    almost layer discard "$id" --yes >/dev/null 2>&1 || vm_info "s3.$tag-cleanup" "the discard failed too"
}

# Scenario 3: the layer over /usr/share made in the last boot is back and
# mounted; its diff shows the package; commit. Then a layer over /usr made
# and committed in this boot, and one discarded.
verify_layer_commit() {
    layer_commit share /usr/share /usr/share/vmtest-share/data.txt
    layer_install usr /usr "$DEBS/vmtest-layer_1.0_all.deb"
    layer_commit usr /usr /usr/bin/vmtest-layer
    check s3.all-locked-after-commit "every managed entry is locked after the commits" all_locked

    # Discard: a layer with changes of every kind, thrown away.
    local before=$VM_STATE/before-discard.manifest id
    vm_manifest /usr "${S3_HASHED[@]}" >"$before"
    almost layer new /usr >"$VM_STATE/layer-new.out" 2>&1
    id=$(tail -n 1 "$VM_STATE/layer-new.out" | awk '{print $NF}')
    check s3.discard-layer-new "a layer over /usr is made" sh -c "almost layer list | grep -q -- '$id'"
    {
        echo new >/usr/bin/vmtest-discard-new
        echo changed >>/usr/share/vmtest-hello/data.txt
        rm -f /usr/share/doc/vmtest-hello/copyright
        rm -rf /usr/share/vmtest-layer
        mkdir -p /usr/share/vmtest-discard/dir
        echo x >/usr/share/vmtest-discard/dir/file
        chmod 700 /usr/bin/vmtest-layer
    } >/dev/null 2>&1
    check s3.discard-changes-visible "the changes show through the layer" test -e /usr/bin/vmtest-discard-new
    check s3.discard "almost layer discard --yes succeeds" almost layer discard "$id" --yes
    findmnt -n --mountpoint /usr >/dev/null && layer_cleanup discard /usr "$id"
    vm_manifest /usr "${S3_HASHED[@]}" >"$VM_STATE/after-discard.manifest"
    check s3.discard-equals-before "/usr after the discard equals /usr before the layer (manifest)" \
        same_manifest "$before" "$VM_STATE/after-discard.manifest"
    check s3.discard-locked "locked after the discard (almost status, the flag on a file the layer changed)" \
        sh -c 'almost status | head -n 3 | grep -qiw locked && lsattr -d /usr/share/vmtest-hello/data.txt | grep -q "^[^ ]*i"'
}

# Scenario 3, after the reboot that followed the commits.
verify_layer_committed() {
    local pkg
    check s3.reboot-files "after a reboot the committed files are there" \
        sh -c '/usr/bin/vmtest-layer | grep -q "vmtest-layer 1.0" && test -f /usr/share/vmtest-share/data.txt'
    check s3.reboot-locked "after a reboot the committed files are locked" \
        have_flag /usr/bin/vmtest-layer /usr/share/vmtest-layer/data.txt /usr/share/man/man1/vmtest-layer.1.gz \
        /usr/share/vmtest-share/data.txt /usr/share/man/man1/vmtest-share.1.gz
    for pkg in vmtest-layer vmtest-share; do
        check "s3.dpkg-L-$pkg" "dpkg -L $pkg agrees: every file it lists exists" \
            sh -c "dpkg -L $pkg | while read -r f; do [ -e \"\$f\" ] || { echo \"missing: \$f\"; exit 1; }; done"
        check "s3.dpkg-verify-$pkg" "dpkg --verify $pkg finds no changed file" dpkg --verify "$pkg"
    done
    check s3.no-layer-left "no layer is left (almost layer list)" sh -c '! almost layer list | grep -q /usr'
    check s3.status-locked "almost status says locked" status_is locked
    check s3.no-failed-units "systemctl --failed is empty" no_failed_units
}

# Scenario 5: default_mode across reboots.
verify_modes_unlocked() {
    check s5.unlocked-status "default_mode = unlocked: almost status says unlocked after the reboot" status_is unlocked
    check s5.unlocked-no-flag "default_mode = unlocked: no entry of /usr has the flag" none_locked /usr
    check s5.unlocked-no-failed "systemctl --failed is empty" no_failed_units
}
verify_modes_keep_unlocked() {
    check s5.keep-unlocked "default_mode = keep after an unlocked boot: still unlocked" status_is unlocked
    check s5.keep-unlocked-no-flag "default_mode = keep: no entry of /usr has the flag" none_locked /usr
}
verify_modes_keep_locked() {
    check s5.keep-locked "default_mode = keep after locking: locked after the reboot" status_is locked
    check s5.keep-locked-all "default_mode = keep: every managed entry has the flag" all_locked
    check s5.back-to-locked "almost config set default_mode locked" almost config set default_mode locked
}

# Scenario 6: after the offline update's reboot.
verify_offline_done() {
    check s6.updated-file "the file the offline update wrote into /usr is there" \
        sh -c 'grep -q "offline update" /usr/share/vmtest-offline/updated'
    check s6.no-system-update "/system-update is gone" test ! -e /system-update
    check s6.locked-again "the boot after the offline update is locked again (almost status)" status_is locked
    check s6.all-locked "every managed entry has the flag, the updated file too" all_locked
    check s6.no-failed-units "systemctl --failed is empty" no_failed_units
    check s6.offline-unit-ran "the previous boot ran almost-offline-update.service" \
        sh -c 'journalctl -b -1 -u almost-offline-update.service -o cat --no-pager | grep -q .'
    vm_info s6.previous-boot "$(journalctl -b -1 -t almost -o cat --no-pager | tail -n 2 | tr '\n' ' ')"
}

# Scenario 4: the boot after the power cuts.
verify_cut_check() {
    wait_boot_finished
    check s4.booted "the boot after the power cuts reached multi-user" true
    check s4.no-failed-units "systemctl --failed is empty" no_failed_units
    check s4.boot-unit-ok "almost-boot.service succeeded" \
        sh -c 'systemctl show -P Result almost-boot.service | grep -qx success'
    journalctl -b -u almost-boot.service -o cat --no-pager | tail -n 5 | sed 's/^/  | boot: /'
    vm_manifest /usr "${CUT_HASHED[@]}" >"$VM_STATE/after-cut.manifest"
    if cmp -s "$VM_STATE/cut-after.manifest" "$VM_STATE/after-cut.manifest"; then
        vm_pass s4.converged "/usr equals the committed layer exactly (commit finished)"
    elif cmp -s "$VM_STATE/cut-before.manifest" "$VM_STATE/after-cut.manifest"; then
        vm_pass s4.converged "/usr equals the tree before the layer exactly (commit rolled back)"
    else
        diff "$VM_STATE/cut-after.manifest" "$VM_STATE/after-cut.manifest" | head -n 15 >"$VM_STATE/cut.diff"
        vm_fail s4.converged "/usr is neither the committed layer nor the tree before it (a mix)" "$VM_STATE/cut.diff"
    fi
    check s4.no-layer-left "no layer and no unfinished commit is left (almost status, layer list)" \
        sh -c '! almost layer list | grep -q /usr && ! almost status | grep -qi "unfinished\|interrupted"'
    check s4.locked "the tree is locked" all_locked
    check s4.status-locked "almost status says locked" status_is locked
}

# --- in-boot scenarios ------------------------------------------------------

# Scenario 2: the apt guard, then almost run -- apt-get install.
inboot_apt() {
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
    check s2.locked-again "almost status says locked after almost run" status_is locked
    check s2.new-files-locked "the new files have the flag" \
        have_flag /usr/bin/vmtest-hello /usr/share/man/man1/vmtest-hello.1.gz /usr/share/vmtest-hello /usr/share/vmtest-hello/data.txt
    check s2.all-locked "every managed entry is locked after almost run" all_locked
}

# Scenario 7: pkexec as a user, through the real system bus and polkitd.
inboot_polkit() {
    local rule=/etc/polkit-1/rules.d/50-almost-vm.rules out=$VM_STATE/pkexec.out rc actions
    actions=$(pkaction 2>/dev/null | grep '^org\.almost\.')
    check s7.actions "the installed policy has org.almost.* actions (pkaction)" test -n "$actions"
    vm_info s7.actions "$(tr '\n' ' ' <<<"$actions")"
    rm -f "$rule"
    systemctl restart polkit.service

    runuser -u tester -- pkexec /usr/bin/almost unlock --yes </dev/null >"$out" 2>&1
    rc=$?
    check s7.refused "without a rule, pkexec almost unlock as tester is refused (status $rc, 126/127)" \
        sh -c "[ $rc -eq 127 ] || [ $rc -eq 126 ]"
    check s7.refused-unchanged "(and the system stays locked)" status_is locked

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
    local uid
    uid=$(id -u tester)
    journalctl -t almost --since "$since" -o cat --no-pager >"$VM_STATE/pkexec.journal"
    check s7.journal-names-user "the journal entries name the user (tester or uid $uid)" \
        grep -Eq "tester|uid[ =:]*$uid\\b" "$VM_STATE/pkexec.journal"
    vm_info s7.journal "$(head -n 2 "$VM_STATE/pkexec.journal" | tr '\n' ' ')"
    rm -f "$rule"
    systemctl restart polkit.service
}

# Scenario 8: upgrade while locked, remove, purge.
inboot_upgrade() {
    local out=$VM_STATE/upgrade.out rc up
    up=$(ls "$DEBS"/almost_*_upgrade.deb)
    local newv
    newv=$(dpkg-deb -f "$up" Version)
    check s8.locked-before "the system is locked before the upgrade" status_is locked
    almost run -- "${APT[@]}" install "$up" >"$out" 2>&1
    rc=$?
    check s8.upgrade "almost run -- apt-get install ./almost_$newv.deb succeeds (status $rc)" test "$rc" -eq 0
    [[ $rc -eq 0 ]] || sed 's/^/  | /' "$out" | tail -n 20
    check s8.upgraded "dpkg says almost $newv is installed" \
        sh -c "dpkg-query -W -f='\${Version} \${Status}' almost | grep -qx '$newv install ok installed'"
    check s8.locked-after-upgrade "the system is locked after the upgrade" status_is locked
    check s8.all-locked-after-upgrade "every managed entry is locked, almost's new files too" all_locked
    check s8.unit-enabled-after-upgrade "almost-boot.service is still enabled" systemctl is-enabled almost-boot.service

    almost run -- "${APT[@]}" remove almost >"$out" 2>&1
    rc=$?
    check s8.remove "almost run -- apt-get remove -y almost succeeds (status $rc)" test "$rc" -eq 0
    [[ $rc -eq 0 ]] || sed 's/^/  | /' "$out" | tail -n 20
    check s8.removed "dpkg says almost is removed" \
        sh -c "! dpkg-query -W -f='\${Status}' almost | grep -q 'install ok installed'"
    check s8.no-flag-after-remove "no entry of /usr has the immutable flag after the removal" none_locked /usr
    check s8.no-hook-after-remove "the apt hook is gone after the removal (or does nothing)" \
        sh -c '! test -e /etc/apt/apt.conf.d/80almost || ! test -x /usr/bin/almost'
    "${APT[@]}" purge almost >"$out" 2>&1
    rc=$?
    check s8.purge "apt-get purge -y almost succeeds (status $rc)" test "$rc" -eq 0
    [[ $rc -eq 0 ]] || sed 's/^/  | /' "$out" | tail -n 20
    check s8.no-flag "no entry of /usr (nor /opt) has the immutable flag" none_locked /usr /opt
    check s8.no-unit "no almost unit is left (files, enablement links, systemctl)" \
        sh -c '! ls /usr/lib/systemd/system/almost* /lib/systemd/system/almost* /etc/systemd/system/*/almost* 2>/dev/null | grep -q . && ! systemctl list-unit-files "almost*" --no-legend | grep -q .'
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

# --- prepare stages -----------------------------------------------------------

# Scenario 3: a layer over /usr/share, a package (files in /usr/share only)
# installed into it by dpkg; committed after the reboot.
prepare_layer_setup() {
    layer_install share /usr/share "$DEBS/vmtest-share_1.0_all.deb"
}

prepare_modes_unlocked() {
    check s5.set-unlocked "almost config set default_mode unlocked" almost config set default_mode unlocked
}
prepare_modes_keep() {
    check s5.set-keep "almost config set default_mode keep" almost config set default_mode keep
}
prepare_modes_keep_locked() {
    check s5.lock "almost lock" almost lock
}

# Scenario 6: a prepared offline update and a test updater ordered like
# PackageKit's packagekit-offline-update.service.
prepare_offline() {
    cp "$VM_DIR/almost-vm-updater.service" /etc/systemd/system/
    mkdir -p /etc/systemd/system/system-update.target.wants
    ln -sfn ../almost-vm-updater.service /etc/systemd/system/system-update.target.wants/almost-vm-updater.service
    ln -sfn /var/cache/almost-vm-update /system-update
    mkdir -p /var/cache/almost-vm-update
    check s6.prepared "/system-update points at the prepared update" test -L /system-update
}

# Scenario 4: the tree before and after a layer with many changes; the
# commit is cut by the host some time after the mark.
prepare_cut_commit() {
    local base=/usr/share/vmtest-cut id out=$VM_STATE/cut.out n
    # A tree of files to change, made through almost run.
    if [[ ! -d $base ]]; then
        almost run -- sh -c "mkdir -p $base/keep $base/mod $base/del $base/dir && for i in \$(seq 1 300); do echo \"file \$i\" >$base/mod/f\$i; echo \"keep \$i\" >$base/keep/k\$i; echo \"del \$i\" >$base/del/d\$i; done && echo x >$base/dir/x" >/dev/null 2>&1
    fi
    n=$(cat "$VM_STATE/cut.round" 2>/dev/null || echo 0)
    n=$((n + 1))
    echo "$n" >"$VM_STATE/cut.round"
    vm_manifest /usr "${CUT_HASHED[@]}" >"$VM_STATE/cut-before.manifest"
    almost layer new /usr/share >"$out" 2>&1
    id=$(tail -n 1 "$out" | awk '{print $NF}')
    # Changes of every kind: modified, added (3000 files of 4 KiB, a
    # symlink), deleted, a directory replaced by a file.
    for i in $(seq 1 300); do echo "round $n" >>"$base/mod/f$i"; done
    mkdir -p "$base/new$n"
    head -c $((3000 * 4096)) /dev/urandom | split -b 4096 -a 4 - "$base/new$n/n"
    ln -sfn ../keep/k1 "$base/new$n/link"
    rm -f "$base"/del/d*
    rm -rf "$base/dir" && echo "file now" >"$base/dir"
    vm_manifest /usr "${CUT_HASHED[@]}" >"$VM_STATE/cut-after.manifest"
    vm_info s4.round "$n: layer $id, $(diff "$VM_STATE/cut-before.manifest" "$VM_STATE/cut-after.manifest" | grep -c '^[<>]') manifest lines differ"
    vm_mark commit-start
    almost layer commit "$id" --yes >"$out" 2>&1
    vm_mark commit-done
    vm_info s4.uncut "the commit ended before the power cut: $(tail -n 1 "$out")"
}

# --- main -------------------------------------------------------------------

vm_info stage "verify=$VERIFY inboot=$INBOOT prepare=$PREPARE (kernel $(uname -r))"
case $VERIFY in
install) verify_install ;;
locked) verify_locked ;;
layer-commit) verify_layer_commit ;;
layer-committed) verify_layer_committed ;;
modes-unlocked) verify_modes_unlocked ;;
modes-keep-unlocked) verify_modes_keep_unlocked ;;
modes-keep-locked) verify_modes_keep_locked ;;
offline-done) verify_offline_done ;;
cut-check) verify_cut_check ;;
none | - | "") ;;
*) vm_fail stage "unknown verify stage $VERIFY" ;;
esac

for s in ${INBOOT//,/ }; do
    case $s in
    2) inboot_apt ;;
    7) inboot_polkit ;;
    8) inboot_upgrade ;;
    -) ;;
    *) vm_fail stage "unknown in-boot scenario $s" ;;
    esac
done

case $PREPARE in
layer-setup) prepare_layer_setup ;;
modes-unlocked) prepare_modes_unlocked ;;
modes-keep) prepare_modes_keep ;;
modes-keep-locked) prepare_modes_keep_locked ;;
offline) prepare_offline ;;
cut-commit) prepare_cut_commit ;;
none | - | "") ;;
*) vm_fail stage "unknown prepare stage $PREPARE" ;;
esac

vm_end "$NAME"
