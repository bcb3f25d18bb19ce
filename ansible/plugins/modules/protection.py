#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) the Almost contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: protection
short_description: Lock or unlock the system files with Almost, and set its configuration
version_added: 0.1.0
description:
  - Sets or clears the immutable flag over the trees Almost manages (C(almost lock),
    C(almost unlock)), and sets Almost's configuration (C(default_mode), C(paths),
    C(exclude), C(keep_commits) in C(/etc/almost/almost.toml)) through C(almost config set).
  - Idempotent. The flags are measured with C(almost status) (never taken from a state file);
    the module acts only when the mode differs from O(state) or a configuration value
    differs from the one asked for, and reports C(changed) only when a flag or the
    configuration really changed.
  - The configuration is changed before the flags, so a lock covers the new O(paths), in one
    C(almost config set KEY=VALUE...) - almost validates the keys together and writes all of
    them or, when it refuses one, nothing; then nothing is locked or unlocked.
  - Runs C(almost) on the managed host, which must be installed there (the C(almost)
    Debian package); the task needs root (C(become=true)).
author:
  - Almost contributors (@almost)
options:
  state:
    description:
      - V(locked) sets the immutable flag on every managed file and directory, V(unlocked)
        clears it (and cancels a pending timed re-lock).
      - Left out, the flags are not touched.
    type: str
    choices: [locked, unlocked]
  default_mode:
    description:
      - The mode Almost applies at every boot; V(keep) leaves the flags as they are.
    type: str
    choices: [locked, unlocked, keep]
  paths:
    description:
      - The managed trees (absolute, normalised paths inside O(root)). Replaces the list.
      - Almost refuses C(/), C(/etc), C(/home), C(/var) and the like, and nested paths.
    type: list
    elements: path
  exclude:
    description:
      - Trees never flagged, each inside a managed path. Replaces the list (and Almost's
        default, C(/usr/local)).
      - An empty list excludes nothing (not even C(/usr/local)).
    type: list
    elements: path
  keep_commits:
    description:
      - How many commits keep their undo data (C(almost layer history), C(almost layer undo));
        almost's default is 10.
      - A whole number from 0 (no commit can be undone) to 1000; almost refuses anything else
        and nothing is written.
    type: int
extends_documentation_fragment:
  - almost.system.almost
attributes:
  check_mode:
    support: full
    description: Reads the flags (C(almost status)) and the configuration; changes nothing.
  diff_mode:
    support: full
    description: The configuration and the protection mode, before and after.
notes:
  - While an C(almost run) is under way (an upgrade), the module does not lock or unlock;
    when the run puts back the mode asked for, that is no change (with a warning);
    otherwise the task fails with the kind C(busy).
  - C(almost status) run as root also finishes what a killed C(almost run) or an expired
    timed unlock left to do (that is Almost's own recovery), in check mode too.
seealso:
  - module: almost.system.info
  - module: almost.system.layer
'''

EXAMPLES = r'''
- name: Lock the system files and lock them at every boot
  almost.system.protection:
    state: locked
    default_mode: locked
  become: true

- name: Manage /usr and /opt, leaving /usr/local and /opt/cache writable
  almost.system.protection:
    paths: [/usr, /opt]
    exclude: [/usr/local, /opt/cache]
    state: locked
  become: true

- name: Keep the undo data of the last 20 commits (almost layer history)
  almost.system.protection:
    keep_commits: 20
  become: true

- name: What would change (no change made)
  almost.system.protection:
    state: locked
  check_mode: true
  diff: true
  become: true
'''

RETURN = r'''
mode:
  description: The protection mode after the task (in check mode, the mode it would have).
  returned: always
  type: str
  sample: locked
flags_changed:
  description: How many files and directories had their flag changed (0 in check mode).
  returned: always
  type: int
  sample: 5213
config:
  description: Almost's effective configuration after the task (in check mode, as it would be).
  returned: always
  type: dict
  sample: {default_mode: locked, paths: [/usr, /opt], exclude: [/usr/local], keep_commits: 10}
before:
  description: The mode and the configuration before the task.
  returned: always
  type: dict
  sample: {mode: unlocked, config: {default_mode: keep, paths: [/usr], exclude: [/usr/local],
                                      keep_commits: 10}}
protocol:
  description: The protocol version of almost's results (null before almost had one).
  returned: always
  type: raw
almost_error:
  description: When almost failed, its error kind (as C(almost --json) names it, or
    C(not-installed)), message, exit code and the command.
  returned: failure
  type: dict
  sample: {kind: config, message: "default_mode: expected locked, unlocked or keep", exit_code: 4, command: config set}
'''

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.almost.system.plugins.module_utils.almost import (
    Almost, AlmostError, argument_spec, config_text, encode_path)

CONFIG_KEYS = ('default_mode', 'exclude', 'paths', 'keep_commits')
# The keys whose value is a list of paths (compared as almost writes them).
PATH_KEYS = ('exclude', 'paths')


def wanted_config(module, before):
    wanted = {}
    for key in CONFIG_KEYS:
        value = module.params[key]
        if value is None:
            continue
        # Paths cross the protocol encoded (a backslash doubled): compare
        # them as almost writes them.
        on_wire = [encode_path(p) for p in value] if key in PATH_KEYS else value
        if on_wire != before.get(key):
            wanted[key] = value
    return wanted


def under_way(almost, state, status):
    """Whether to lock or unlock now while an ``almost run`` (say, an
    upgrade) is under way: never, since it would pull the files from
    under it. When the run puts back the mode asked for, there is
    nothing to do; otherwise the task fails as busy."""
    runs = ', '.join('pid %s: %s' % (r.get('pid'), r.get('command')) for r in status['runs'])
    if status['restore'] == state:
        if status['mode'] == state:
            return False
        almost.warnings.append(
            'an almost run is under way (%s): the system files are %s until it ends, then %s '
            'again' % (runs, status['mode'], state))
        return False
    raise AlmostError('busy', 'an almost run is under way (%s), which puts the mode back to %s '
                      'when it ends; not %s now (try again when it has ended)'
                      % (runs, status['restore'], 'locking' if state == 'locked' else 'unlocking'),
                      None, 'protection')


def main():
    spec = argument_spec()
    spec.update(
        state=dict(type='str', choices=['locked', 'unlocked']),
        default_mode=dict(type='str', choices=['locked', 'unlocked', 'keep']),
        paths=dict(type='list', elements='path'),
        exclude=dict(type='list', elements='path'),
        keep_commits=dict(type='int'),
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    state = module.params['state']
    almost = Almost(module, module.params['root'], module.params['executable'])
    result = dict(changed=False, flags_changed=0)
    try:
        config_before = almost.config()
        wanted = wanted_config(module, config_before)
        status = almost.status()
        result['before'] = dict(mode=status['mode'], config=config_before)
        # Before anything is written: a run under way may refuse the task.
        hold = (state is not None and bool(status['runs']) and status['restore'] is not None
                and not under_way(almost, state, status))
        config_after = dict(config_before)
        config_after.update(wanted)
        if wanted and not module.check_mode:
            # One call: almost validates the keys together (paths and
            # exclude must fit each other) and writes all or nothing.
            config_after = almost.config_set_all(wanted)
            status = almost.status()
        mode = status['mode']
        act = state is not None and (
            mode != state or (state == 'unlocked' and status['relock_at'] is not None)
            or (module.check_mode and ('paths' in wanted or 'exclude' in wanted)))
        if hold:
            act = False
        if act and not module.check_mode:
            done = almost.set_mode(state == 'locked')
            result['flags_changed'] = done['changed']
            mode = done['mode']
        elif act:
            mode = state
    except AlmostError as e:
        almost.warn_all()
        e.fail(module, **result)
    almost.warn_all()
    result.update(
        changed=bool(wanted) or (act and (module.check_mode or result['flags_changed'] > 0
                                          or result['before']['mode'] != mode
                                          or status['relock_at'] is not None)),
        mode=mode,
        config=config_after,
        protocol=almost.protocol,
    )
    if module._diff:
        config_file = '%s (effective)' % os.path.join(module.params['root'], almost.config_path)
        result['diff'] = [
            dict(before_header=config_file, after_header=config_file,
                 before=config_text(config_before), after=config_text(config_after)),
            dict(before_header='protection', after_header='protection',
                 before='mode: %s\n' % result['before']['mode'], after='mode: %s\n' % mode),
        ]
    module.exit_json(**result)


if __name__ == '__main__':
    main()
