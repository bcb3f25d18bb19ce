#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# with-polkit.sh DIR CMD [ARG...]: runs CMD (as root; drop privileges in
# CMD itself, e.g. with setpriv) where pkexec works against a private
# polkitd: used by the tests of the real pkexec (helper/tests/pkexec_real.rs
# and the GUI's as_user scenario), never by the product.
#
# pkexec talks to the system bus at its fixed socket (it ignores
# DBUS_SYSTEM_BUS_ADDRESS) and polkitd reads fixed directories, so this
# runs in a mount namespace of its own: a tmpfs over /run holding a private
# dbus-daemon's socket, polkitd started by hand on it, DIR/actions
# bind-mounted over /usr/share/polkit-1/actions and DIR/rules over
# /etc/polkit-1/rules.d (both must be readable by all: polkitd runs as its
# own user). The daemons are stopped and the namespace vanishes when CMD
# ends; the machine's own polkit and buses are never touched. Exits with
# CMD's status; daemon logs go to DIR/system-bus.log and DIR/polkitd.log.

# shellcheck source=build-aux/sandbox.sh source-path=SCRIPTDIR/..
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/sandbox.sh"

POLKITD=${POLKITD:-/usr/lib/polkit-1/polkitd}

(($# >= 2)) || sb_die "usage: with-polkit.sh DIR CMD [ARG...]"
sb_require_root "$@"
dir=$(readlink -f "$1")
shift
[[ -d $dir/actions && -d $dir/rules ]] || sb_die "$dir needs actions/ and rules/"
[[ -x $POLKITD ]] || sb_die "$POLKITD is missing (package polkitd)"
sb_enter_private_ns "$dir" "$@"

mount -t tmpfs almost-test-run /run
mkdir /run/dbus
mount --bind "$dir/actions" /usr/share/polkit-1/actions
mount --bind "$dir/rules" /etc/polkit-1/rules.d
sed -e 's|@type@|<type>system</type>|' -e 's|@socket@|/run/dbus/system_bus_socket|' \
    "$SB_SRC_DIR/build-aux/test-bus.conf.in" >/run/dbus/system.conf

bus=''
pk=''
stop() {
    [[ -n $pk ]] && kill "$pk" 2>/dev/null
    [[ -n $bus ]] && kill "$bus" 2>/dev/null
    wait 2>/dev/null || true
}
trap stop EXIT

dbus-daemon --config-file=/run/dbus/system.conf --nofork --nopidfile 2>>"$dir/system-bus.log" &
bus=$!
sb_wait_for_socket /run/dbus/system_bus_socket "$bus" ||
    sb_die "the private system bus did not start (see $dir/system-bus.log)"
chmod 666 /run/dbus/system_bus_socket

"$POLKITD" --no-debug >>"$dir/polkitd.log" 2>&1 &
pk=$!
up=0
for _ in $(seq 200); do
    if dbus-send --system --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
        org.freedesktop.DBus.NameHasOwner string:org.freedesktop.PolicyKit1 2>/dev/null |
        grep -q 'boolean true'; then
        up=1
        break
    fi
    sleep 0.05
done
((up)) || sb_die "polkitd did not take its name on the private bus (see $dir/polkitd.log)"

rc=0
"$@" || rc=$?
exit "$rc"
