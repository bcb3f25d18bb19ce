#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# with-journald.sh CMD [ARG...]: runs CMD (as root) beside a private
# systemd-journald, for the tests of the audit log's journal mode
# (helper/tests/audit.rs), never by the product.
#
# In a mount namespace of its own, a tmpfs goes over /run (and over
# /var/log/journal when it exists, so nothing can reach the machine's
# persistent journal); journald is started by hand, listens at
# /run/systemd/journal/socket and writes /run/log/journal, where journalctl
# run by CMD reads. The daemon is stopped and the namespace vanishes when
# CMD ends; the machine's own journal is never touched. Exits with CMD's
# status.

# shellcheck source=build-aux/sandbox.sh source-path=SCRIPTDIR/..
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/sandbox.sh"

JOURNALD=${JOURNALD:-/lib/systemd/systemd-journald}

(($#)) || sb_die "usage: with-journald.sh CMD [ARG...]"
sb_require_root "$@"
[[ -x $JOURNALD ]] || sb_die "$JOURNALD is missing (package systemd)"
sb_enter_private_ns "$@"

mount -t tmpfs almost-test-run /run
if [[ -d /var/log/journal ]]; then
    mount -t tmpfs almost-test-journal /var/log/journal
fi
mkdir -p /run/systemd/journal

journald=''
stop() {
    [[ -n $journald ]] && kill "$journald" 2>/dev/null
    wait 2>/dev/null || true
}
trap stop EXIT

SYSTEMD_LOG_TARGET=console "$JOURNALD" >/run/journald.log 2>&1 &
journald=$!
sb_wait_for_socket /run/systemd/journal/socket "$journald" ||
    sb_die "journald did not start: $(tail -n 5 /run/journald.log 2>/dev/null | tr '\n' ' ')"

rc=0
"$@" || rc=$?
exit "$rc"
