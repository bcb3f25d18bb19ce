#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Tests of the Ansible collection almost.system (ansible/), as root:
#
# 0. Unit tests of module_utils/almost.py (test_module_utils.py: the path
#    encoding, reading almost's JSON lines, errors, the diff text).
# 1. `ansible-test sanity` on the collection (a copy under a temporary
#    .../ansible_collections/almost/system/, as ansible-test wants it), with
#    the Python of the virtualenv build-aux/ansible-venv.sh makes
#    (target/ansible-venv, ansible-core from PyPI at a pinned version).
# 2. The integration playbooks tests/ansible/*.yml, each against
#    localhost (connection local) with `root:` pointing at a fresh sandbox
#    root inside one ext4 loop image, mounted in a private mount namespace
#    (build-aux/sandbox.sh): the machine's own system is never touched.
#    The modules run the real `almost` (target/debug/almost, built here)
#    through a wrapper that refuses any --root outside the image.
# 3. The README's playbook, with ansible-playbook --syntax-check.
#
# Usage: sudo tests/ansible/run.sh [--no-sanity] [--almost BIN] [TEST...]
#   (TEST: units, sanity, readme or a playbook such as lock; default: all; --almost: test
#   that almost binary instead of building target/debug/almost)
# The last line says `ansible: N passed, M failed`. Logs: target/ansible-results/.

set -euo pipefail

# shellcheck source=build-aux/sandbox.sh source-path=SCRIPTDIR/../..
. "$(dirname "${BASH_SOURCE[0]}")/../../build-aux/sandbox.sh"

sb_require_root "$@"
cd "$SB_SRC_DIR"

sanity=1
ALMOST_BIN=${ALMOST_ANSIBLE_BIN:-}
while (($#)); do
    case $1 in
    --no-sanity) sanity='' ;;
    --almost) ALMOST_BIN=$(readlink -f "${2:?--almost needs a path}") && shift ;;
    *) break ;;
    esac
    shift
done
export ALMOST_ANSIBLE_BIN=$ALMOST_BIN
[[ -n $sanity ]] || export ALMOST_ANSIBLE_NO_SANITY=1
[[ -z ${ALMOST_ANSIBLE_NO_SANITY:-} ]] || sanity=''
HERE=$SB_SRC_DIR/tests/ansible
RESULTS=${RESULTS:-$SB_SRC_DIR/target/ansible-results}

if [[ -z ${SB_NS_TOKEN:-} ]]; then
    # Outside the namespace: build almost and make the venv once, with
    # the machine's network and caches as they are.
    if [[ -z $ALMOST_BIN ]]; then
        sb_need_cargo
        cargo build --quiet -p almost-helper || sb_die "cargo build -p almost-helper failed"
    fi
    venv=$(bash build-aux/ansible-venv.sh | tail -n1) || sb_die "build-aux/ansible-venv.sh failed"
    export ALMOST_ANSIBLE_VENV=$venv
fi
sb_enter_private_ns "$@"

VENV=${ALMOST_ANSIBLE_VENV:?}
ALMOST_BIN=${ALMOST_BIN:-$SB_SRC_DIR/target/debug/almost}
[[ -x $ALMOST_BIN ]] || sb_die "missing $ALMOST_BIN"
rm -rf "$RESULTS"
mkdir -p "$RESULTS"

passed=0 failed=0 failures=()
pass() {
    passed=$((passed + 1))
    sb_info "PASS $1${2:+ ($2)}"
}
fail() {
    failed=$((failed + 1))
    failures+=("$1")
    sb_info "${SB_RED}FAIL${SB_RESET} $1${2:+ ($2)}"
}

selected=("$@")
want() {
    ((${#selected[@]} == 0)) && return 0
    local s
    for s in "${selected[@]}"; do [[ $s == "$1" ]] && return 0; done
    return 1
}

sb_create ansible 160
WORK=$SB_DIR/work
mkdir -p "$WORK"

# The collection where ansible-playbook and ansible-test look for it.
COLL=$WORK/collections/ansible_collections/almost/system
mkdir -p "$(dirname "$COLL")"
cp -a "$SB_SRC_DIR/ansible" "$COLL"
rm -rf "$COLL/tests/output"

# --- 0. unit tests of module_utils/almost.py -----------------------------------

if want units; then
    sb_section "unit tests: tests/ansible/test_module_utils.py"
    if "$VENV/bin/python" -m unittest "$HERE/test_module_utils.py" >"$RESULTS/units.log" 2>&1; then
        pass units "$(grep -o 'Ran [0-9]* tests' "$RESULTS/units.log")"
    else
        cat "$RESULTS/units.log"
        fail units "see $RESULTS/units.log"
    fi
fi

# --- 1. ansible-test sanity ---------------------------------------------------

if [[ -n $sanity ]] && want sanity; then
    sb_section "ansible-test sanity (almost.system, python 3.11, --local)"
    started=$SECONDS
    log=$RESULTS/sanity.log
    # ansible-test installs each test's pinned requirements from PyPI into
    # virtualenvs of its own, kept under $HOME/.ansible/test/ and reused:
    # HOME is target/ansible-test-home, not root's. No docker here, so
    # --local. It bootstraps pip in those virtualenvs with a get-pip.py it
    # downloads from a host that is not PyPI (the name holds the pip
    # version ansible-core 2.19 pins, see build-aux/ansible-venv.sh); in
    # its stead, a few lines that take pip from Python's own ensurepip
    # (Debian 12's pip 23, which installs the pinned requirements as well:
    # fetching pip 24.2 into every virtualenv doubled the first run's
    # time), then install what ansible-test asks for from PyPI.
    test_home=$SB_SRC_DIR/target/ansible-test-home
    mkdir -p "$test_home/.ansible/test/cache"
    cat >"$test_home/.ansible/test/cache/get_pip_24_2.py" <<'EOF'
# Stands in for get-pip.py for ansible-test (tests/ansible/run.sh made it):
# pip from ensurepip, then the packages ansible-test asked for, from PyPI.
import ensurepip
import subprocess
import sys

ensurepip.bootstrap(upgrade=True)
args = [a for a in sys.argv[1:]
        if a not in ('--no-setuptools', '--no-wheel') and not a.startswith('pip==')]
if [a for a in args if not a.startswith('-')]:
    sys.exit(subprocess.call([sys.executable, '-m', 'pip', 'install'] + args))
EOF
    if (cd "$COLL" && HOME=$test_home PATH="$VENV/bin:$PATH" \
        ansible-test sanity --local --python 3.11 --color no --requirements) >"$log" 2>&1; then
        pass sanity "$((SECONDS - started)) s"
    else
        grep -E '^(ERROR|FATAL)' "$log" | head -n 40
        fail sanity "see $log"
    fi
fi

# --- 2. the integration playbooks ---------------------------------------------

# The almost the modules run: the real one, after a check that --root is
# a directory inside the sandbox image (never the machine's own system).
WRAPPER=$WORK/almost
cat >"$WRAPPER" <<EOF
#!/bin/bash
# almost for the Ansible tests: refuses any --root outside $SB_ROOT.
root=''
args=("\$@")
for ((i = 0; i < \${#args[@]}; i++)); do
    [[ \${args[i]} == --root ]] && root=\${args[i + 1]:-}
    [[ \${args[i]} == -- ]] && break
done
if [[ \${args[0]:-} != --version ]]; then
    case \$(readlink -f -- "\$root" 2>/dev/null) in
    "$SB_ROOT"/?*) ;;
    *) echo "test wrapper: refusing almost with --root '\$root' (not inside $SB_ROOT)" >&2; exit 99 ;;
    esac
fi
exec "$ALMOST_BIN" "\$@"
EOF
chmod 755 "$WRAPPER"

# make_root NAME: a fresh system root in the image: /usr (a tool, a text
# file, a library and its symlink) and /opt, managed, default_mode keep,
# unlocked. Prints its path.
make_root() {
    local r=$SB_ROOT/$1
    sb_assert_sandbox
    mkdir -p "$r"/usr/bin "$r"/usr/lib/demo "$r"/usr/share/doc/demo "$r"/opt/demo "$r"/etc/almost "$r"/run
    printf '#!/bin/sh\necho "tool 1.0"\n' >"$r/usr/bin/tool"
    chmod 755 "$r/usr/bin/tool"
    printf 'The demo, version 1.\nSecond line.\n' >"$r/usr/share/doc/demo/README"
    head -c 4096 /dev/urandom >"$r/usr/lib/demo/libdemo.so.1"
    ln -s libdemo.so.1 "$r/usr/lib/demo/libdemo.so"
    printf 'colour = "blue"\n' >"$r/opt/demo/app.conf"
    cat >"$r/etc/almost/almost.toml" <<'EOF'
# The Ansible tests' sandbox: a comment that a config change must keep.
default_mode = "keep"
paths = ["/usr", "/opt"]
EOF
    printf '%s\n' "$r"
}

export ANSIBLE_COLLECTIONS_PATH=$WORK/collections
export ANSIBLE_LOCAL_TEMP=$WORK/ansible-local ANSIBLE_REMOTE_TEMP=$WORK/ansible-remote
export ANSIBLE_HOME=$WORK/ansible-home
export ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=0 ANSIBLE_DEPRECATION_WARNINGS=0
export ANSIBLE_LOCALHOST_WARNING=0 ANSIBLE_INVENTORY_UNPARSED_WARNING=0
# Modules go to the Python that runs them through a pipe, not a temporary file.
export ANSIBLE_PIPELINING=1

# playbook NAME [ANSIBLE-PLAYBOOK OPTIONS...]: runs tests/ansible/NAME.yml
# on a fresh root; its log is $RESULTS/NAME.log.
playbook() {
    local name=$1 root log started rc=0
    shift
    root=$(make_root "$name")
    log=$RESULTS/$name.log
    started=$SECONDS
    # In a PID namespace of its own: whatever a playbook leaves running
    # (lock.yml's almost run in the background, if it fails early) ends
    # with it, before the image is unmounted.
    unshare --pid --fork --mount-proc -- "$VENV/bin/ansible-playbook" -i localhost, -c local \
        -e "ansible_python_interpreter=/usr/bin/python3" \
        -e "sandbox=$root" -e "almost_bin=$WRAPPER" -e "image=$SB_ROOT" \
        "$@" "$HERE/$name.yml" >"$log" 2>&1 || rc=$?
    PLAYBOOK_SECONDS=$((SECONDS - started))
    return "$rc"
}


for name in lock check bad layer system info fleet; do
    want "$name" || continue
    sb_section "playbook $name.yml"
    if playbook "$name"; then
        pass "$name" "$PLAYBOOK_SECONDS s"
    else
        tail -n 40 "$RESULTS/$name.log"
        fail "$name" "see $RESULTS/$name.log"
    fi
done

# The collection's own playbook (ansible/playbooks/fleet.yml, the role
# fleet with its defaults) on a fleet of two: two inventory hosts, each
# its own sandbox root (connection local, no become: this is root
# already). host1 starts unlocked, host2 partly locked; the upgrade
# writes into /usr, and on host2 leaves a reboot-required note. Oracles:
# lsattr, the files, the config files, the role's report in the output.
if want fleet-of-two; then
    sb_section "ansible/playbooks/fleet.yml on two sandbox hosts"
    r1=$(make_root host1)
    r2=$(make_root host2)
    "$ALMOST_BIN" lock --root "$r2" >/dev/null && chattr -i "$r2/usr/bin/tool"
    cat >"$WORK/fleet-inventory.yml" <<EOF
fleet:
  vars:
    ansible_connection: local
    ansible_become: false
    ansible_python_interpreter: /usr/bin/python3
    almost_fleet_executable: $WRAPPER
    almost_fleet_update_cache: false
  hosts:
    host1:
      almost_fleet_root: $r1
      almost_fleet_upgrade_command: [sh, -c, 'echo upgraded > "\$1/usr/bin/tool"', upgrade, $r1]
    host2:
      almost_fleet_root: $r2
      almost_fleet_upgrade_command:
        - sh
        - -c
        - 'echo upgraded > "\$1/usr/bin/tool"; echo linux-image-test > "\$1/run/reboot-required.pkgs"; touch "\$1/run/reboot-required"'
        - upgrade
        - $r2
EOF
    log=$RESULTS/fleet-of-two.log
    started=$SECONDS
    ok=1
    unshare --pid --fork --mount-proc -- "$VENV/bin/ansible-playbook" -i "$WORK/fleet-inventory.yml" \
        -e almost_fleet_upgrade=true "$COLL/playbooks/fleet.yml" >"$log" 2>&1 || ok=''
    for r in "$r1" "$r2"; do
        [[ $(cat "$r/usr/bin/tool") == upgraded ]] || { ok='' && echo "$r: not upgraded" >>"$log"; }
        # Every file and directory of the two trees carries the flag
        # again (lsattr -R's flag lines; it cannot read a symlink's).
        if { lsattr -d "$r/usr" "$r/opt" && lsattr -R "$r/usr" "$r/opt" 2>/dev/null; } |
            grep -E '^\S+ /' | grep -v '^\S*i\S* ' | grep -q .; then
            ok='' && echo "$r: not all locked" >>"$log"
        fi
        grep -qx 'default_mode = "locked"' "$r/etc/almost/almost.toml" ||
            { ok='' && echo "$r: default_mode not locked" >>"$log"; }
    done
    grep -q '"msg": "host1: no reboot needed"' "$log" || ok=''
    grep -q '"msg": "host2: reboot needed (for linux-image-test)"' "$log" || ok=''
    if [[ -n $ok ]]; then
        pass fleet-of-two "$((SECONDS - started)) s"
    else
        tail -n 40 "$log"
        fail fleet-of-two "see $log"
    fi
fi

# Diff mode as a user sees it: ansible-playbook --diff prints the
# configuration's change as a unified diff (the callback's own output).
if want diff; then
    sb_section "playbook diff.yml (--diff, the printed diff checked)"
    if playbook diff --diff &&
        grep -qx -- '-default_mode = "keep"' "$RESULTS/diff.log" &&
        grep -qx -- '+default_mode = "locked"' "$RESULTS/diff.log" &&
        grep -qx -- '-mode: unlocked' "$RESULTS/diff.log" &&
        grep -qx -- '+mode: locked' "$RESULTS/diff.log" &&
        grep -qx -- 'added    /usr/share/doc/demo/NEWS (file, 9 bytes)' "$RESULTS/diff.log" &&
        grep -qx -- '-The demo, version 1.' "$RESULTS/diff.log" &&
        grep -qx -- '+The demo, version 2.' "$RESULTS/diff.log"; then
        pass diff "$PLAYBOOK_SECONDS s"
    else
        tail -n 60 "$RESULTS/diff.log"
        fail diff "see $RESULTS/diff.log"
    fi
fi

# The playbook the README gives to copy, and the collection's own
# playbook: they work on the real system (root /), so they are only
# checked by ansible-playbook --syntax-check (YAML, module and role
# names); the role, which fleet.yml runs, does the same.
if want readme; then
    sb_section "README's playbook (the collection built and installed, ansible-playbook --syntax-check)"
    awk '/^    # fleet.yml /{on=1} on && /^[^ ]/{exit} on{sub(/^    /, ""); print}' README.md \
        >"$WORK/readme-fleet.yml"
    # Installed as the README says: built with ansible-galaxy and
    # installed from the tarball into a directory of its own.
    if [[ $(wc -l <"$WORK/readme-fleet.yml") -gt 10 ]] &&
        "$VENV/bin/ansible-galaxy" collection build "$COLL" --output-path "$WORK/galaxy" \
            >"$RESULTS/readme.log" 2>&1 &&
        ANSIBLE_COLLECTIONS_PATH=$WORK/installed \
            "$VENV/bin/ansible-galaxy" collection install "$WORK"/galaxy/almost-system-*.tar.gz \
            -p "$WORK/installed" >>"$RESULTS/readme.log" 2>&1 &&
        ANSIBLE_COLLECTIONS_PATH=$WORK/installed "$VENV/bin/ansible-playbook" -i localhost, \
            --syntax-check "$WORK/readme-fleet.yml" \
            "$WORK/installed/ansible_collections/almost/system/playbooks/fleet.yml" \
            >>"$RESULTS/readme.log" 2>&1; then
        pass readme
    else
        cat "$WORK/readme-fleet.yml" "$RESULTS/readme.log" 2>/dev/null | tail -n 40
        fail readme "see $RESULTS/readme.log"
    fi
fi

printf '\n'
((failed == 0)) || sb_info "failed: ${failures[*]}"
printf 'ansible: %d passed, %d failed\n' "$passed" "$failed"
((failed == 0))
