#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) the Almost contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: layer
short_description: Make, commit or discard an Almost layer, and see its changes
version_added: 0.1.0
description:
  - A layer is an overlayfs mount over managed directories. Whatever is changed there
    lands in the layer, not in the system, until it is committed (applied to the system
    files, which are locked again if the system is locked) or discarded.
  - V(present) makes a layer over O(path) (or over all of O(paths), or the system layer with
    O(system=true)) unless one is open over exactly those directories; V(committed) and
    V(discarded) act on the layer O(id), or on that open layer.
  - The system layer (O(system=true), C(almost layer new --system)) is the one a package
    install needs - the managed trees, C(/etc) and the package manager's state
    (C(/var/lib/dpkg), C(/var/lib/apt), ...) - so that apt and dpkg work through it and a
    discard takes the packages, their configuration and the package database back together.
  - Every state returns the layer's changes (C(almost layer diff)). With C(--diff), a commit
    or a discard shows them as the task's diff.
  - Runs C(almost) on the managed host (the C(almost) Debian package); needs root
    (C(become=true)).
author:
  - Almost contributors (@almost)
options:
  path:
    description:
      - The managed directory the layer covers (a path inside O(root)), for example C(/usr).
      - With O(state=present), one of O(path), O(paths) or O(system=true) is required; with
        the other states, one of them or O(id).
      - The open layer over O(path) is the one that covers that directory alone.
      - Mutually exclusive with O(paths) and O(system).
    type: path
  paths:
    description:
      - Several directories one layer covers (paths inside O(root)), for example
        V([/usr/lib, /opt]); almost refuses two of which one lies inside the other.
      - The open layer over O(paths) is the one that covers exactly this set of directories,
        in any order (a layer over C(/usr) alone is not the layer over C(/usr) and C(/etc)).
      - Not empty. Mutually exclusive with O(path) and O(system).
    type: list
    elements: path
  system:
    description:
      - V(true) - the system layer (C(almost layer new --system)); V(present) makes one unless
        a system layer is open, V(committed) and V(discarded) act on the open system layer.
      - Mutually exclusive with O(path) and O(paths).
    type: bool
    default: false
  id:
    description:
      - The layer's id (as C(almost layer list) and this module's RV(layer.id) give it).
    type: str
  state:
    description:
      - V(present) - a layer is open over O(path), O(paths) or the system layer is (made if
        there is none).
      - V(committed) - the layer's changes are applied to the system files and the layer is gone.
        A layer already committed (the last commit of O(id), or no open layer over O(path),
        O(paths) or no system layer) is no change.
      - V(discarded) - the layer and all its changes are thrown away; nothing else is touched.
        No open layer is no change.
    type: str
    choices: [present, committed, discarded]
    default: present
  temporary:
    description:
      - With O(state=present), a layer made now is discarded at the next boot instead of
        mounted again.
    type: bool
    default: false
  at_boot:
    description:
      - With O(state=committed) or O(state=discarded), leave the act to the next boot
        (C(almost layer commit --at-boot)), for a layer the running system uses (one over
        C(/usr)). The layer then shows RV(layer.pending).
    type: bool
    default: false
  patch:
    description:
      - Include unified diffs of modified text files in RV(changes) and in the task's diff.
    type: bool
    default: true
extends_documentation_fragment:
  - almost.system.almost
attributes:
  check_mode:
    support: full
    description: Reads the layers and their changes; makes, commits and discards nothing.
  diff_mode:
    support: full
    description: The layer's changes, on commit and discard (grouped per directory for a layer of several).
seealso:
  - module: almost.system.protection
  - module: almost.system.info
'''

EXAMPLES = r'''
- name: Open a layer over /usr for a trial install
  almost.system.layer:
    path: /usr
  register: trial
  become: true

- name: Install into the layer (dpkg writes into it)
  ansible.builtin.apt:
    deb: /tmp/some-tool.deb
  become: true

- name: Review and commit it (the changes show with --diff)
  almost.system.layer:
    id: "{{ trial.layer.id }}"
    state: committed
  become: true

- name: Or throw it away
  almost.system.layer:
    path: /usr
    state: discarded
  become: true

- name: Try a package install in the system layer (the trees, /etc and dpkg's state)
  almost.system.layer:
    system: true
  become: true

- name: Install (apt and dpkg write into the layer; almost's apt hook lets them)
  ansible.builtin.apt:
    name: htop
  become: true

- name: Review what the install changed, per directory (no change made)
  almost.system.layer:
    system: true
    state: committed
  check_mode: true
  diff: true
  register: review
  become: true

- name: Commit it
  almost.system.layer:
    system: true
    state: committed
  become: true

- name: One layer over two directories, then thrown away
  almost.system.layer:
    paths: [/usr/lib, /opt]
    state: discarded
  become: true
'''

RETURN = r'''
layer:
  description: The layer acted on (null when there is none, as after a discard of nothing).
  returned: always
  type: dict
  contains:
    id:
      description: The layer's id.
      type: str
    path:
      description: The first directory it covers, inside the root.
      type: str
    paths:
      description: Every directory it covers, RV(layer.path) first.
      type: list
      elements: str
    system:
      description: Whether it is the system layer (made by O(system=true)).
      type: bool
    left_out:
      description: With O(system=true), when made now - the directories of the system layer
        this root lacks (left out of it).
      type: list
      elements: str
    mounted:
      description: Whether it is mounted.
      type: bool
    pending:
      description: The act left to the next boot (commit, discard), or null.
      type: str
  sample: {id: 9f3c2a1b, path: /usr, paths: [/usr, /opt, /etc, /var/lib/dpkg], system: true,
           mounted: true, pending: null, temporary: false}
changes:
  description:
    - The layer's changes, as C(almost layer diff --json) gives them (before the commit or
      discard), grouped per directory in the order of RV(layer.paths). Each has path, change
      (added, modified, metadata, deleted, replaced), type, sizes, hashes, detail, meta and,
      with O(patch), the unified diff of a text file.
  returned: always
  type: list
  elements: dict
summary:
  description: How many changes of each kind.
  returned: always
  type: dict
  sample: {added: 1, modified: 2, metadata: 0, deleted: 0, replaced: 0}
committed:
  description: What C(almost layer commit) reported (operations applied, outcome).
  returned: when a layer was committed now
  type: dict
protocol:
  description: The protocol version of almost's results (null before almost had one).
  returned: always
  type: raw
almost_error:
  description: When almost failed, its error kind, message, exit code and the command.
  returned: failure
  type: dict
'''

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.almost.system.plugins.module_utils.almost import (
    Almost, AlmostError, argument_spec, diff_text, encode_path, show_path, summary)


def wanted_paths(module):
    """The directories asked for (O(path) or O(paths)) as almost writes
    them on the wire, normalised, in the order given; None for O(system)
    or O(id) alone. Bad combinations fail here, before almost runs."""
    p = module.params
    given = [name for name in ('path', 'paths') if p[name] is not None]
    if p['system']:
        given.insert(0, 'system')
    if len(given) > 1:
        module.fail_json(msg='%s are mutually exclusive: give one of path (one directory), '
                             'paths (several) or system: true (the system layer)'
                             % ' and '.join(given))
    if p['state'] == 'present' and not given:
        module.fail_json(msg='state=present needs path, paths or system: true (the layer to make)')
    if not given and p['id'] is None:
        module.fail_json(msg='one of path, paths, system: true or id is required')
    if p['paths'] is not None and not p['paths']:
        module.fail_json(msg='paths is an empty list: name at least one directory')
    if p['system']:
        return None
    asked = [p['path']] if p['path'] is not None else p['paths']
    if asked is None:
        return None
    # /usr/ names the same directory as /usr (almost refuses .. itself).
    wanted = [encode_path(os.path.normpath(path)) for path in asked]
    for i, path in enumerate(wanted):
        if path in wanted[:i]:
            module.fail_json(msg='paths: %s is given twice' % show_path(path))
    return wanted


def covers(layer, wanted):
    """Whether the layer covers exactly the directories ``wanted`` (the
    whole set: a layer over /usr is not the one over /usr and /etc)."""
    return set(layer['paths']) == set(wanted)


def find(layers, layer_id, wanted, system):
    for layer in layers:
        if layer_id is not None:
            if layer['id'] == layer_id:
                return layer
        elif system:
            if layer['system']:
                return layer
        elif wanted is not None and covers(layer, wanted):
            return layer
    return None


def shown(layer):
    """The layer's directories, for a message."""
    if layer['system']:
        return 'the system layer (%s)' % ', '.join(show_path(p) for p in layer['paths'])
    return ', '.join(show_path(p) for p in layer['paths'])


def main():
    spec = argument_spec()
    spec.update(
        path=dict(type='path'),
        paths=dict(type='list', elements='path'),
        system=dict(type='bool', default=False),
        id=dict(type='str'),
        state=dict(type='str', default='present', choices=['present', 'committed', 'discarded']),
        temporary=dict(type='bool', default=False),
        at_boot=dict(type='bool', default=False),
        patch=dict(type='bool', default=True),
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    state = p['state']
    wanted = wanted_paths(module)
    almost = Almost(module, p['root'], p['executable'])
    result = dict(changed=False, layer=None, changes=[], summary=summary([]))
    try:
        layer = find(almost.layers(), p['id'], wanted, p['system'])
        if layer is not None and p['id'] is not None:
            if wanted is not None and not covers(layer, wanted):
                module.fail_json(msg='layer %s covers %s, not %s' % (
                    p['id'], shown(layer), ', '.join(show_path(w) for w in wanted)))
            if p['system'] and not layer['system']:
                module.fail_json(msg='layer %s is not the system layer: it covers %s'
                                 % (p['id'], shown(layer)))
        if state == 'present':
            if layer is None and p['id'] is not None:
                # No layer of that id: let almost say so, with its error kind.
                almost.layer_diff(p['id'], patch=False)
            if layer is None:
                result['changed'] = True
                if not module.check_mode:
                    layer = almost.layer_new(wanted, p['temporary'])
            if layer is not None:
                result['changes'] = almost.layer_diff(layer['id'], p['patch'])
        elif layer is None:
            if p['id'] is not None:
                undo = almost.status()['undo']
                if not (state == 'committed' and undo and undo.get('id') == p['id']):
                    # Neither open nor the last commit: almost names the error.
                    almost.layer_diff(p['id'], patch=False)
        else:
            wanted_act = 'commit' if state == 'committed' else 'discard'
            result['changes'] = almost.layer_diff(layer['id'], p['patch'])
            if p['at_boot'] and layer.get('pending') == wanted_act:
                pass
            else:
                result['changed'] = True
                if not module.check_mode:
                    if state == 'committed':
                        done = almost.layer_commit(layer['id'], p['at_boot'])
                        if not p['at_boot']:
                            result['committed'] = dict(
                                (k, v) for k, v in done.items() if k not in ('event', 'command'))
                    else:
                        almost.layer_discard(layer['id'], p['at_boot'])
                    if p['at_boot']:
                        layer = find(almost.layers(), layer['id'], None, False) or layer
                    else:
                        layer = dict(layer, mounted=False)
            if module._diff and result['changed'] and not p['at_boot']:
                text = diff_text(result['changes'], layer['paths'])
                result['diff'] = dict(
                    prepared='%s layer %s over %s:\n%s' % (
                        wanted_act, layer['id'], shown(layer), text or '(no changes)\n'))
        result['layer'] = layer
    except AlmostError as e:
        almost.warn_all()
        # One act per task: when it failed, almost changed nothing.
        result['changed'] = False
        e.fail(module, **result)
    almost.warn_all()
    result['summary'] = summary(result['changes'])
    result['protocol'] = almost.protocol
    module.exit_json(**result)


if __name__ == '__main__':
    main()
