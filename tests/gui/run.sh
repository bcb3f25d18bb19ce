#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# End-to-end GUI tests of almost-panel (run as root): builds the panel and
# `almost`, makes a throwaway ext4 loop image in a private mount namespace,
# fills it with a small fake /usr, locks it, makes layers with changes,
# starts Xvfb and a session bus, and lets tests/gui/driver.py drive the real
# window through AT-SPI as a user would. Every `almost` call and the panel
# itself get --root: the machine's own system is never touched.
#
# Usage: sudo tests/gui/run.sh [SCENARIO...]   (default: all)
# Results (a log and a screenshot per scenario): $RESULTS, by default
# target/gui-results/.

set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
RESULTS=${RESULTS:-$SRC/target/gui-results}

die() {
    echo "run.sh: error: $*" >&2
    exit 1
}

[[ $EUID -eq 0 ]] || die "this needs root (the sandbox is a loop mount): sudo $0"

# A private mount namespace: the loop mount and the layers' overlays are
# invisible to the rest of the machine and vanish with this script.
# The token holds this PID (unchanged across exec) and the namespace we
# came from, so an inherited value never matches.
ns=$(readlink /proc/self/ns/mnt)
if [[ ${ALMOST_GUI_NS:-} != "$$:"* || ${ALMOST_GUI_NS#*:} == "$ns" ]]; then
    if [[ -z ${ALMOST_GUI_BUILT:-} ]]; then
        command -v cargo >/dev/null || PATH="$HOME/.cargo/bin:$PATH"
        (cd "$SRC" && cargo build --quiet -p almost-helper -p almost-panel) || die "build failed"
        export ALMOST_GUI_BUILT=1
    fi
    export ALMOST_GUI_NS="$$:$ns"
    exec unshare --mount --propagation private -- "$BASH" "$(readlink -f "$0")" "$@"
fi
unset ALMOST_GUI_NS
[[ $(readlink /proc/self/ns/mnt) != "$(readlink /proc/1/ns/mnt)" ]] ||
    die "not in a private mount namespace"

ALMOST=$SRC/target/debug/almost
PANEL=$SRC/target/debug/almost-panel
[[ -x $ALMOST && -x $PANEL ]] || die "missing $ALMOST or $PANEL"

DIR=$(mktemp -d /var/tmp/almost-gui.XXXXXX)
IMG=$DIR/fs.img
R=$DIR/root
XVFB_PID=''
HOLDER_PID=''

cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    set +e
    local pidfile
    for pidfile in "$DIR/panel.pid" "$DIR/as-user/run/panel.pid"; do
        [[ -f $pidfile ]] && kill "$(cat "$pidfile")" 2>/dev/null
    done
    [[ -n $HOLDER_PID ]] && kill "$HOLDER_PID" 2>/dev/null
    [[ -n $XVFB_PID ]] && kill "$XVFB_PID" 2>/dev/null
    wait 2>/dev/null
    if mountpoint -q "$R" 2>/dev/null; then
        # Overlays (layers) first, deepest first, then the image.
        findmnt -rn -o TARGET | grep -F "$R/" | sort -r | while read -r m; do
            umount "$m" 2>/dev/null || umount -l "$m"
        done
        chattr -R -f -i "$R" 2>/dev/null
        umount "$R" 2>/dev/null || umount -l "$R"
    fi
    local dev
    for dev in $(losetup -n -O NAME -j "$IMG" 2>/dev/null); do losetup -d "$dev"; done
    chattr -R -f -i "$DIR" 2>/dev/null
    rm -rf --one-file-system "$DIR"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

almost() { "$ALMOST" --root "$R" "$@"; }

# --- the sandbox -----------------------------------------------------------
truncate -s 256M "$IMG"
mkfs.ext4 -q -F -L almost-gui "$IMG"
mkdir "$R"
mount -o loop "$IMG" "$R"
[[ $(findmnt -n -o SOURCE --mountpoint "$R") == /dev/loop* ]] || die "sandbox is not a loop mount"

mkdir -p "$R/etc/almost" "$R/usr/include" "$R/usr/bin" "$R/usr/lib/fake" "$R/usr/share/doc/fake" "$R/var/lib" "$R/run"
cat >"$R/etc/almost/almost.toml" <<'TOML'
# Mode applied at boot: "locked", "unlocked" or "keep"
default_mode = "locked"
paths = ["/usr"]
exclude = []
TOML
for i in $(seq 1 120); do echo "library $i" >"$R/usr/lib/fake/lib$i.so"; done
for i in $(seq 1 60); do echo "doc $i" >"$R/usr/share/doc/fake/page$i.txt"; done
printf '#!/bin/sh\necho tool\n' >"$R/usr/bin/tool"
chmod 755 "$R/usr/bin/tool"
printf 'one\ntwo\nthree\nfour\n' >"$R/usr/share/doc/modify.txt"
echo 'bye' >"$R/usr/share/doc/deleteme.txt"
ln -s tool "$R/usr/bin/tool-link"
echo "int fake;" >"$R/usr/include/fake.h"

almost lock >/dev/null

# Layer 1 over /usr/share: one deletion, one addition, one modification.
L1=$(almost layer new /usr/share | tail -n1)
rm "$R/usr/share/doc/deleteme.txt"
echo 'hello from the layer' >"$R/usr/share/doc/added.txt"
printf 'one\nTWO\nthree\nfour\nfive\n' >"$R/usr/share/doc/modify.txt"
# Layer 2 over /usr/lib: to be discarded.
L2=$(almost layer new /usr/lib | tail -n1)
echo 'should never land' >"$R/usr/lib/fake/discarded.so"
# Layer 3 over /usr/bin: held busy by a process, so its commit is refused.
L3=$(almost layer new /usr/bin | tail -n1)
echo 'new tool' >"$R/usr/bin/other"
(cd "$R/usr/bin" && exec sleep 3600) &
HOLDER_PID=$!
echo "layers: $L1 (/usr/share) $L2 (/usr/lib) $L3 (/usr/bin), holder $HOLDER_PID"

# --- the display and the session bus --------------------------------------
rm -rf "$RESULTS"
mkdir -p "$RESULTS"
# The display is ready when Xvfb has written its number to the -displayfd
# pipe (a whole line: it does so once it accepts connections) and a client
# (xdpyinfo) has actually connected to it. -noreset: by default an X server
# resets when its last client disconnects (xdpyinfo, or the accessibility
# bus launcher, which sets a root window property and leaves), and a client
# connecting during the reset fails: that was the panel's "Failed to
# initialize GTK" at first start. The driver still relaunches the panel
# once if it exits before its window appears.
start_xvfb() {
    rm -f "$DIR/display"
    Xvfb -displayfd 5 -screen 0 1280x900x24 -nolisten tcp -noreset 5>"$DIR/display" 2>>"$RESULTS/xvfb.log" &
    XVFB_PID=$!
    local n=''
    for _ in $(seq 1 100); do
        if [[ -s $DIR/display && $(wc -l <"$DIR/display") -ge 1 ]]; then
            n=$(head -n1 "$DIR/display")
            break
        fi
        kill -0 "$XVFB_PID" 2>/dev/null || return 1
        sleep 0.05
    done
    [[ $n =~ ^[0-9]+$ ]] || return 1
    for _ in $(seq 1 100); do
        if xdpyinfo -display ":$n" >/dev/null 2>&1; then
            DISPLAY=":$n"
            return 0
        fi
        kill -0 "$XVFB_PID" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}
if ! start_xvfb; then
    kill "$XVFB_PID" 2>/dev/null
    wait "$XVFB_PID" 2>/dev/null
    XVFB_PID=''
    echo "run.sh: Xvfb did not answer; starting it again" >&2
    start_xvfb || die "Xvfb did not start (see $RESULTS/xvfb.log)"
fi
export DISPLAY GDK_BACKEND=x11 GSK_RENDERER=cairo
export LANG=C.UTF-8
unset LANGUAGE LC_ALL

# The scenarios run as root; as_user (run by default, after them) runs the
# panel as nobody, through the real pkexec.
root_scenarios=()
as_user=0
if (($#)); then
    for a in "$@"; do
        if [[ $a == as_user ]]; then as_user=1; else root_scenarios+=("$a"); fi
    done
else
    as_user=1
fi

rc=0
if ((${#root_scenarios[@]} || !$#)); then
    dbus-run-session -- env GTK_A11Y=atspi GTK_USE_PORTAL=0 ADW_DISABLE_PORTAL=1 NO_AT_BRIDGE= \
        /usr/bin/python3 "$SRC/tests/gui/driver.py" \
        --root "$R" --panel "$PANEL" --almost "$ALMOST" --results "$RESULTS" \
        --pid-file "$DIR/panel.pid" "${root_scenarios[@]}" 2>&1 | tee "$DIR/root-driver.out" || rc=$?
fi
# counts FILE: the "N passed, M failed" a driver printed last (none: 0 0).
counts() {
    grep -E '^[0-9]+ passed, [0-9]+ failed$' "$1" 2>/dev/null | tail -n1 | awk '{ print $1, $3 }' | grep . ||
        echo "0 0"
}

# --- the panel as a user, through the real pkexec ------------------------------
# pkexec talks to the system bus at its fixed socket and asks polkitd, so
# this part runs through build-aux/with-polkit.sh: a mount namespace of its
# own (inside this one), a tmpfs over /run with a private dbus-daemon's
# socket, polkitd started by hand on it, the policy under test (exec.path:
# this build's almost) over the actions directory and a test rule over
# rules.d (both in $U/polkit, with the daemons' logs). The rule lets
# nobody lock and unlock (org.almost.lock and org.almost.unlock, which
# pkexec tells apart by almost's first argument; nothing else) without a
# password unless the driver's deny file
# exists (then it says no) or its ask file does (then it asks the
# authentication agent, tests/gui/test_agent.py, which dismisses or types
# a password). For the password, nobody gets one in that namespace only:
# a copy of /etc/shadow with the hash of a password made for this run is
# bind-mounted over it there, and polkit's own helper checks what the
# agent types through PAM against it. Xvfb stays the same; nobody gets a
# session bus (and so an accessibility bus) of their own, and the driver
# runs as nobody too, checking the flags with lsattr (reading them needs
# no privilege). The machine's own polkit and buses are never touched.
NOBODY=65534
run_as_user() {
    local U=$DIR/as-user
    local results=$RESULTS/as_user
    mkdir -p "$U/polkit/actions" "$U/polkit/rules" "$U/home" "$U/run" "$U/deny" "$results"
    # nobody must reach the sandbox root; the tmp dir is 0700 by default.
    chmod 755 "$DIR" "$U" "$U/polkit" "$U/polkit/actions" "$U/polkit/rules"
    # deny/ is nobody's and open to all: polkitd (its own user) looks in it.
    chown "$NOBODY:$NOBODY" "$U/home" "$U/run" "$U/deny" "$results"
    chmod 700 "$U/home" "$U/run"
    sed "s|@bindir@|$(dirname "$ALMOST")|" "$SRC/data/org.almost.policy.in" \
        >"$U/polkit/actions/org.almost.policy"
    cat >"$U/polkit/rules/50-almost-gui-test.rules" <<RULES
polkit.addRule(function(action, subject) {
    if ((action.id == "org.almost.lock" || action.id == "org.almost.unlock")
        && subject.user == "nobody") {
        try {
            polkit.spawn(["/usr/bin/test", "!", "-e", "$U/deny/now"]);
        } catch (e) {
            return polkit.Result.NO;
        }
        try {
            polkit.spawn(["/usr/bin/test", "!", "-e", "$U/deny/ask"]);
        } catch (e) {
            return polkit.Result.AUTH_SELF;
        }
        return polkit.Result.YES;
    }
});
RULES
    chmod 644 "$U/polkit/actions/org.almost.policy" "$U/polkit/rules/50-almost-gui-test.rules"
    local password hash shadow_before
    password=$(openssl rand -hex 12)
    hash=$(openssl passwd -6 -stdin <<<"$password")
    shadow_before=$(sha256sum </etc/shadow)
    grep -q '^nobody:' /etc/shadow || { echo "as_user: FAIL: no user nobody in /etc/shadow" >&2; return 1; }
    install -m 640 -g shadow /dev/null "$U/shadow"
    sed "s|^nobody:[^:]*:|nobody:$hash:|" /etc/shadow >"$U/shadow"
    # nobody runs the panel, almost and the driver from this tree.
    if ! setpriv --reuid="$NOBODY" --regid="$NOBODY" --clear-groups \
        sh -c 'test -x "$1" && test -x "$2" && test -r "$3"' sh "$PANEL" "$ALMOST" \
        "$SRC/tests/gui/driver.py"; then
        echo "as_user: FAIL: user nobody cannot run $PANEL and $ALMOST or read the driver" \
            "(the source tree must be readable by all, as the unprivileged cargo tests need too)" >&2
        return 1
    fi
    local log_before
    log_before=$(wc -l <"$R/var/log/almost.log" 2>/dev/null || echo 0)
    local urc=0
    bash "$SRC/build-aux/with-polkit.sh" "$U/polkit" \
        sh -c 'mount --bind "$1" /etc/shadow && shift && exec "$@"' sh "$U/shadow" \
        setpriv --reuid="$NOBODY" --regid="$NOBODY" --clear-groups \
        env -i HOME="$U/home" XDG_RUNTIME_DIR="$U/run" PATH=/usr/bin:/bin LANG=C.UTF-8 \
        DISPLAY="$DISPLAY" GDK_BACKEND=x11 GSK_RENDERER=cairo \
        dbus-run-session -- env GTK_A11Y=atspi GTK_USE_PORTAL=0 ADW_DISABLE_PORTAL=1 NO_AT_BRIDGE= \
        /usr/bin/python3 "$SRC/tests/gui/driver.py" \
        --root "$R" --panel "$PANEL" --almost "$ALMOST" --results "$results" \
        --pid-file "$U/run/panel.pid" --deny-file "$U/deny/now" \
        --password "$password" as_user \
        2>&1 | tee "$DIR/user-driver.out" || urc=$?
    if [[ $(sha256sum </etc/shadow) != "$shadow_before" ]]; then
        echo "as_user: FAIL: the machine's /etc/shadow changed" >&2
        urc=1
    fi
    if ((urc == 0)); then
        # The audit log, read as root: the unlocks and the locks were done
        # by almost as root (euid 0) for uid 65534 through pkexec; the
        # refused, dismissed and wrongly authenticated attempts never ran
        # almost, so they left no entry.
        if ! python3 - "$R/var/log/almost.log" "$log_before" "$NOBODY" <<'PY'
import json, sys
path, skip, uid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(path) as f:
    new = [json.loads(l) for l in f.read().splitlines()[skip:] if l.strip()]
acts = [(e["command"], e.get("pkexec_uid"), e.get("euid")) for e in new
        if e["command"] in ("lock", "unlock") and e["result"] != "started"]
# Said yes by the rule, then after the right password.
want = [("unlock", uid, 0), ("lock", uid, 0)] * 2
if acts != want:
    sys.exit(f"audit log: expected {want}, found {acts} in {new}")
print(f"audit log: {acts}")
PY
        then
            echo "FAIL as_user: the audit log does not show the acts done through pkexec" >&2
            urc=1
        fi
    fi
    if ((urc == 0)); then echo "as_user: PASS"; else echo "as_user: FAIL (see $results)"; fi
    return "$urc"
}
user_ok=1
if ((as_user)); then
    run_as_user || { rc=1; user_ok=0; }
fi
# One total for test.sh: both drivers' counts, the as_user scenario counted
# failed when the audit log check after it failed (or it did not run).
read -r p f < <(counts "$DIR/root-driver.out")
if ((as_user)); then
    if ((user_ok)); then p=$((p + 1)); else f=$((f + 1)); fi
fi
echo "$p passed, $f failed"
exit "$rc"
