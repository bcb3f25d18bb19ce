#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The command-line demo (sudo build-aux/demo.sh --cli, or this script
# directly): builds `almost`, makes a throwaway
# sandbox (an ext4 loop image in a private mount namespace) holding a small
# fake system, and shows `almost` locking it, refusing a write, letting one
# command through with `almost run`, and unlocking it again. Every command is
# aimed at the sandbox with --root; the machine's own system is never touched.
# Options: --pause (wait for Enter between steps), --help.

set -euo pipefail

# shellcheck source=build-aux/sandbox.sh source-path=SCRIPTDIR/..
. "$(dirname "${BASH_SOURCE[0]}")/sandbox.sh"

pause=0
for arg in "$@"; do
    case $arg in
    --pause) pause=1 ;;
    -h | --help)
        sed -n '4,10s/^# \{0,1\}//p' "$0"
        exit 0
        ;;
    *) sb_die "unknown option: $arg (try --help)" ;;
    esac
done

sb_require_root "$@"
sb_enter_private_ns "$@"
cd "$SB_SRC_DIR"

problems=()

# step TITLE TEXT...: a numbered heading and a few lines of explanation.
step_no=0
step() {
    if ((pause && step_no)) && [[ -t 0 ]]; then
        read -r -p "${SB_DIM}(press Enter)${SB_RESET}" _
    fi
    step_no=$((step_no + 1))
    printf '\n%s%d. %s%s\n' "$SB_BOLD" "$step_no" "$1" "$SB_RESET"
    shift
    local line
    for line in "$@"; do printf '   %s\n' "$line"; done
}

# shell_word WORD: WORD quoted the way a person would type it.
shell_word() {
    local w=$1
    if [[ $w =~ ^[A-Za-z0-9_./=:@%+,-]+$ ]]; then
        printf '%s' "$w"
    elif [[ $w != *[\"\$\`\\]* ]]; then
        printf '"%s"' "$w"
    else
        printf "'%s'" "${w//\'/\'\\\'\'}"
    fi
}

# show CMD ARGS...: prints the command as a person would type it ($R for the
# sandbox root), runs it, and prints its output with the same shortening.
# Returns the command's exit status.
show() {
    sb_assert_sandbox
    local shown='' w
    if [[ $1 == sb_almost ]]; then
        # shellcheck disable=SC2016 # a literal $R, for the reader
        shown='almost --root $R '
        shift
        set -- sb_almost "$@"
        for w in "${@:2}"; do shown+="$(shell_word "$w") "; done
    else
        for w in "$@"; do shown+="$(shell_word "$w") "; done
    fi
    shown=${shown//"$SB_ROOT"/\$R}
    printf '%s$ %s%s\n' "$SB_BOLD" "${shown% }" "$SB_RESET"
    local out rc=0
    out=$("$@" 2>&1) || rc=$?
    if [[ -n $out ]]; then
        printf '%s\n' "$out" | sed "s|$SB_ROOT|\$R|g; s/^/  /"
    fi
    ((rc == 0)) || printf '  %s(exit status %d)%s\n' "$SB_DIM" "$rc" "$SB_RESET"
    return "$rc"
}

expect_ok() {
    local what=$1
    shift
    if show "$@"; then return 0; fi
    problems+=("$what: expected success")
    printf '  %sUNEXPECTED: this should have worked%s\n' "$SB_RED" "$SB_RESET"
}

expect_refused() {
    local what=$1
    shift
    if show "$@"; then
        problems+=("$what: expected a refusal (EPERM)")
        printf '  %sUNEXPECTED: this should have been refused%s\n' "$SB_RED" "$SB_RESET"
    else
        printf '  %s-> refused, as it should be%s\n' "$SB_GREEN" "$SB_RESET"
    fi
}

# has_flag PATH: whether PATH carries the immutable flag (read by lsattr,
# independently of almost).
has_flag() { [[ $(lsattr -d "$1" 2>/dev/null | cut -d' ' -f1) == *i* ]]; }

# expect_flags on|off PATHS...: records a problem for each path whose flag
# is not as expected.
expect_flags() {
    local want=$1 p
    shift
    for p in "$@"; do
        if [[ $want == on ]] && ! has_flag "$p"; then
            problems+=("${p/"$SB_ROOT"/\$R} should be immutable")
        elif [[ $want == off ]] && has_flag "$p"; then
            problems+=("${p/"$SB_ROOT"/\$R} should not be immutable")
        fi
    done
}

sb_section "Preparing (dependencies, cargo build --release -p almost-helper)"
bash build-aux/install-deps.sh
sb_need_cargo
cargo build --release -p almost-helper
ALMOST_BIN="$SB_SRC_DIR/target/release/almost"
[[ -x $ALMOST_BIN ]] || sb_die "the build did not produce $ALMOST_BIN"

sb_create demo 128
R=$SB_ROOT

# A small fake system: what a real one has in /usr and /opt, plus a home
# directory and the configuration, which Almost never locks.
sb_demo_tree
printf '#!/bin/sh\necho "hello from the sandbox"\n' >"$R/usr/bin/hello"
chmod 755 "$R/usr/bin/hello"
printf 'Demo package.\n' >"$R/usr/share/doc/demo/README"
printf 'Things to do: try Almost.\n' >"$R/home/user/notes.txt"

cat <<EOF

${SB_BOLD}Almost demo${SB_RESET}
A throwaway ext4 image is mounted on
    R = $R
in a mount namespace private to this script: the rest of the machine cannot
see it, and it disappears when the demo ends. Every command below is given
--root \$R, so \`almost\` (target/release/almost) only ever works on that fake
system, never on this machine's own /usr. The fake system holds:
EOF
(cd "$R" && find . -path ./lost+found -prune -o -print | sed '1d; s|^\./|    |' | sort)

step "The state before anything is done" \
    "status reads the immutable flag of every file under the managed paths" \
    "(/usr and /opt, from \$R/etc/almost/almost.toml)."
expect_ok "status" sb_almost status
show sb_almost config show || true

step "Lock the system" \
    "lock sets the immutable flag (the 'i' attribute) on every file and directory" \
    "of /usr and /opt."
expect_ok "lock" sb_almost lock
expect_ok "status after lock" sb_almost status

step "Evidence, with lsattr (an independent tool): 'i' is set" \
    "The managed trees carry the flag; /home and /etc are not managed and do not."
show lsattr -d "$R/usr" "$R/usr/bin" "$R/usr/bin/tool" "$R/usr/lib/demo/libdemo.so.1" \
    "$R/opt/demo/app.conf" "$R/home/user/notes.txt" "$R/etc/almost/almost.toml" || true
expect_flags on "$R/usr" "$R/usr/bin" "$R/usr/bin/tool" "$R/usr/lib/demo/libdemo.so.1" \
    "$R/opt/demo" "$R/opt/demo/app.conf"
expect_flags off "$R/home/user/notes.txt" "$R/etc/almost/almost.toml"

step "Even root cannot change a locked file" \
    "Overwriting, creating or deleting under a locked directory fails with EPERM" \
    "(\"Operation not permitted\"), whoever tries: a stray script, a typo, malware."
# shellcheck disable=SC2016 # $1 is for sh -c
expect_refused "overwrite a locked file" sh -c 'echo hacked > "$1"' sh "$R/usr/bin/tool"
expect_refused "create a file in a locked directory" touch "$R/usr/bin/new-tool"
expect_refused "delete a locked file" rm -f "$R/usr/bin/hello"
printf '   Files outside the managed trees stay writable:\n'
# shellcheck disable=SC2016 # $1 is for sh -c
expect_ok "append to a home file" sh -c 'echo "- it works" >> "$1"' sh "$R/home/user/notes.txt"

step "A deliberate change with 'almost run'" \
    "almost run unlocks, runs one command, and puts the lock back afterwards" \
    "(here: patch \$R/usr/bin/tool)."
expect_ok "almost run" sb_almost run -- sh -c "echo patched > $R/usr/bin/tool"
show cat "$R/usr/bin/tool" || true
if [[ $(cat "$R/usr/bin/tool") != patched ]]; then
    problems+=("almost run did not let the command patch \$R/usr/bin/tool")
fi
expect_ok "status after run" sb_almost status
show lsattr -d "$R/usr/bin/tool" || true
expect_flags on "$R/usr/bin" "$R/usr/bin/tool"

step "Unlock" \
    "unlock clears the flag everywhere (--yes: no confirmation question)."
expect_ok "unlock" sb_almost unlock --yes
expect_ok "status after unlock" sb_almost status
show lsattr -d "$R/usr" "$R/usr/bin" "$R/usr/bin/tool" "$R/opt/demo/app.conf" || true
expect_flags off "$R/usr" "$R/usr/bin" "$R/usr/bin/tool" "$R/opt/demo" "$R/opt/demo/app.conf"
# shellcheck disable=SC2016 # $1 is for sh -c
expect_ok "write after unlock" sh -c 'echo "tool 1.1" > "$1"' sh "$R/usr/bin/tool"

step "Clean-up" \
    "The sandbox's flags are cleared, the image is unmounted and deleted."

if ((${#problems[@]})); then
    printf '\n%sThe demo saw something unexpected:%s\n' "$SB_RED" "$SB_RESET"
    printf '  - %s\n' "${problems[@]}"
    exit 1
fi
printf '\n%sDemo finished: everything behaved as described.%s\n' "$SB_GREEN" "$SB_RESET"
