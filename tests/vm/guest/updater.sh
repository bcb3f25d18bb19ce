#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The Almost VM rig's test offline updater (scenario 6), inside the guest:
# run by almost-vm-updater.service in system-update.target. Checks that
# almost-offline-update.service unlocked /usr before it, writes a file into
# /usr as an update would, removes /system-update and reboots.

set -uo pipefail
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
# shellcheck source=tests/vm/guest/lib.sh
. /root/vm/lib.sh
# The results go to a file that the next boot's stage passes on to the host:
# in this early boot a write to the second serial port could block until
# the reboot (seen once: two lines came through, then the unit hung on the
# port until its close timed out).
exec >"$VM_STATE/updater.out" 2>&1

vm_info s6.target "$(systemctl is-active system-update.target system-update-pre.target | tr '\n' ' ')"
check s6.in-system-update "this boot is an offline update boot (default target system-update.target)" \
    sh -c 'systemctl list-jobs --no-legend | grep -q system-update.target || systemctl is-active system-update-pre.target'
check s6.unlock-ran "almost-offline-update.service ran before the updater and succeeded" \
    sh -c 'systemctl show -P Result almost-offline-update.service | grep -qx success && [ "$(systemctl show -P ExecMainExitTimestampMonotonic almost-offline-update.service)" -gt 0 ]'
check s6.boot-unit-skipped "almost-boot.service did not lock (skipped: /system-update exists)" \
    sh -c '[ "$(systemctl show -P ConditionResult almost-boot.service)" = no ]'
check s6.unlocked "/usr is unlocked for the update (almost status)" status_is unlocked
check s6.write "the updater writes a new file into /usr" \
    sh -c 'mkdir -p /usr/share/vmtest-offline && echo "written by the offline update" >/usr/share/vmtest-offline/updated'
rm -f /system-update
sync
vmt "END offline-update"
systemctl reboot --no-block
