#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The demo (sudo build-aux/demo.sh): builds almost and its panel, makes a
# throwaway sandbox (an ext4 loop image in a private mount namespace) with a
# small fake system, locks it, opens a layer over /usr/share with three
# changes to review (a file added, one modified, one deleted), and opens
# the panel on it (as root, `almost-panel --root R`) on your display.
# Close the window (or press Ctrl-C) to end: the layer is unmounted, the
# flags cleared and the image unmounted and deleted. The machine's own
# system is never touched.
#
# Options:
#   --cli            the command-line demo instead (build-aux/demo-cli.sh)
#   --headless       no display needed: runs the panel under Xvfb, saves
#                    screenshots of the window (top, then scrolled to the
#                    layer) and of the review dialog, and exits
#   --shots DIR      where --headless saves them (default target/demo-screenshots)
#   --help

set -euo pipefail

# shellcheck source=build-aux/sandbox.sh source-path=SCRIPTDIR/..
. "$(dirname "${BASH_SOURCE[0]}")/sandbox.sh"

headless=0
shots=''
args=("$@")
while (($#)); do
    case $1 in
    --cli)
        shift
        exec bash "$SB_SRC_DIR/build-aux/demo-cli.sh" "$@"
        ;;
    --headless) headless=1 ;;
    --shots)
        shots=${2:?--shots needs a directory}
        shift
        ;;
    -h | --help)
        sed -n '4,20s/^# \{0,1\}//p' "$0"
        exit 0
        ;;
    *) sb_die "unknown option: $1 (try --help)" ;;
    esac
    shift
done
set -- "${args[@]}"
shots=${shots:-$SB_SRC_DIR/target/demo-screenshots}
[[ $shots == /* ]] || shots="$PWD/$shots"

# The panel goes on the display of the person who ran `sudo`. sudo keeps
# DISPLAY and XAUTHORITY by default but not WAYLAND_DISPLAY or
# XDG_RUNTIME_DIR: look for what is missing before anything is built.
if ((!headless)); then
    if [[ -z ${WAYLAND_DISPLAY:-} && -z ${DISPLAY:-} ]]; then
        cat >&2 <<EOF
$sb_prog: no display: neither DISPLAY nor WAYLAND_DISPLAY is set.
Run it from a terminal of your desktop session, keeping the display variables:

    sudo --preserve-env=DISPLAY,XAUTHORITY,WAYLAND_DISPLAY,XDG_RUNTIME_DIR build-aux/demo.sh

or without a display: sudo build-aux/demo.sh --headless   (screenshots, then exits)
or the command-line demo: sudo build-aux/demo.sh --cli
EOF
        exit 2
    fi
    if [[ -n ${SUDO_UID:-} ]]; then
        if [[ -n ${WAYLAND_DISPLAY:-} && -z ${XDG_RUNTIME_DIR:-} && -d /run/user/$SUDO_UID ]]; then
            export XDG_RUNTIME_DIR=/run/user/$SUDO_UID
        fi
        if [[ -n ${DISPLAY:-} && -z ${XAUTHORITY:-} ]]; then
            home=$(getent passwd "${SUDO_USER:-}" | cut -d: -f6 || true)
            for auth in "$home/.Xauthority" /run/user/"$SUDO_UID"/.mutter-Xwaylandauth.* \
                /run/user/"$SUDO_UID"/xauth_*; do
                if [[ -f $auth ]]; then
                    export XAUTHORITY=$auth
                    break
                fi
            done
        fi
    fi
fi

sb_require_root "$@"
sb_enter_private_ns "$@"
cd "$SB_SRC_DIR"

sb_section "Preparing (dependencies, cargo build -p almost-helper -p almost-panel)"
bash build-aux/install-deps.sh
sb_need_cargo
cargo build -p almost-helper -p almost-panel
ALMOST_BIN="$SB_SRC_DIR/target/debug/almost"
PANEL_BIN="$SB_SRC_DIR/target/debug/almost-panel"
[[ -x $ALMOST_BIN && -x $PANEL_BIN ]] || sb_die "the build did not produce $ALMOST_BIN and $PANEL_BIN"

XVFB_PID=''
# Runs on exit, whatever the way (window closed, Ctrl-C, error): the panel
# of --headless and Xvfb are stopped, then sb_cleanup unmounts the layer's
# overlay, clears the flags, unmounts and deletes the image.
demo_cleanup() {
    local rc=$?
    set +e
    [[ -f $SB_DIR/panel.pid ]] && kill "$(cat "$SB_DIR/panel.pid")" 2>/dev/null
    [[ -n $XVFB_PID ]] && kill "$XVFB_PID" 2>/dev/null
    wait 2>/dev/null
    (exit "$rc")
    sb_cleanup
}

sb_create demo 128
trap demo_cleanup EXIT
R=$SB_ROOT

# A small fake system, locked.
sb_demo_tree
cat >"$R/usr/share/doc/demo/README" <<'EOF'
Demo package
============

Version 1.0 of the demo tool.
Run `tool` to see it work.
Report problems to the demo team.
EOF
printf 'Notes that the next version drops.\n' >"$R/usr/share/doc/demo/OLD-NOTES"
sb_almost lock >/dev/null

# A layer over /usr/share with three changes to review.
layer=$(sb_almost layer new /usr/share | tail -n1)
sb_assert_sandbox
printf '1.1: the tool says hello.\n' >"$R/usr/share/doc/demo/NEWS"
cat >"$R/usr/share/doc/demo/README" <<'EOF'
Demo package
============

Version 1.1 of the demo tool.
Run `tool` to see it work.
Report problems to the demo team.
See NEWS for what changed.
EOF
rm "$R/usr/share/doc/demo/OLD-NOTES"

cat <<EOF

${SB_BOLD}Almost panel demo${SB_RESET}
A throwaway ext4 image is mounted on
    R = $R
in a mount namespace private to this script. /usr and /opt in it are locked,
and layer $layer over /usr/share holds three changes: NEWS added, README
modified, OLD-NOTES deleted. The panel runs as root with --root \$R: try the
switch, the mode at startup, and Review (then Commit or Cancel) on the layer.
EOF

# The panel gets a session bus of its own (root cannot use the user's).
panel_env=(env GTK_USE_PORTAL=0 ADW_DISABLE_PORTAL=1)

if ((headless)); then
    sb_section "Headless: the panel under Xvfb, screenshots in $shots"
    results=$(mktemp -d "$SB_DIR/results.XXXXXX")
    sb_start_xvfb "$SB_DIR" "$results/xvfb.log" || sb_die "Xvfb did not start"
    XVFB_PID=$SB_XVFB_PID
    export DISPLAY GDK_BACKEND=x11 GSK_RENDERER=cairo LANG=C.UTF-8
    unset LANGUAGE LC_ALL WAYLAND_DISPLAY
    rc=0
    dbus-run-session -- "${panel_env[@]}" GTK_A11Y=atspi NO_AT_BRIDGE= \
        /usr/bin/python3 "$SB_SRC_DIR/tests/gui/driver.py" \
        --root "$R" --panel "$PANEL_BIN" --almost "$ALMOST_BIN" --results "$results" \
        --pid-file "$SB_DIR/panel.pid" --shots "$shots" demo_shots || rc=$?
    if ((rc == 0)); then
        sb_info "saved: $shots/panel.png $shots/layers.png $shots/review.png"
    else
        sb_warn "the screenshots failed; the driver's log:"
        cat "$results"/*.log >&2 || true
    fi
    exit "$rc"
fi

sb_section "Opening the panel (close its window or press Ctrl-C to end the demo)"
# In the foreground: Ctrl-C reaches the panel too (same process group),
# then the EXIT trap cleans up. Accessibility is off: the private session
# bus has no screen reader on it.
# The panel's PID goes to panel.pid, so that the clean-up stops it even if
# only this script was signalled.
# shellcheck disable=SC2016 # $$ and $1 are for sh -c
dbus-run-session -- "${panel_env[@]}" GTK_A11Y=none \
    sh -c 'echo $$ >"$1" && shift && exec "$@"' sh "$SB_DIR/panel.pid" "$PANEL_BIN" --root "$R" || true
sb_section "Clean-up: the layer is unmounted, the flags cleared, the image deleted"
