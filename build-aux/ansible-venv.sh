#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Makes (or reuses) the virtualenv the Ansible tests run in:
# target/ansible-venv, with ansible-core from PyPI at the version pinned
# below, on Debian's python3 (3.11 on Debian 12; ansible-core 2.19 is the
# last series whose controller runs on it). Prints the venv's directory on
# its last line. Reused as it is when it already holds that version;
# `--fresh` makes it anew. Installs Debian's python3-venv with apt when
# Python's ensurepip is missing (as root).

set -euo pipefail

ANSIBLE_CORE_VERSION=2.19.14

src_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${ANSIBLE_VENV:-$src_dir/target/ansible-venv}
python=${ANSIBLE_VENV_PYTHON:-/usr/bin/python3}

if [[ ${1:-} == --fresh ]]; then
    rm -rf "$venv"
elif [[ -n ${1:-} ]]; then
    echo "usage: $0 [--fresh]" >&2
    exit 2
fi

have=''
if [[ -x $venv/bin/python ]]; then
    have=$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("ansible-core"))' 2>/dev/null || true)
fi
if [[ $have != "$ANSIBLE_CORE_VERSION" ]]; then
    if ! "$python" -c 'import ensurepip' 2>/dev/null; then
        apt-get -o DPkg::Lock::Timeout=900 install -y --no-install-recommends python3-venv >&2
    fi
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        "ansible-core==$ANSIBLE_CORE_VERSION" >&2
    "$venv/bin/ansible" --version >&2
fi
printf '%s\n' "$venv"
