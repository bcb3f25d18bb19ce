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
  - A layer is an overlayfs mount over a managed directory. Whatever is changed there
    lands in the layer, not in the system, until it is committed (applied to the system
    files, which are locked again if the system is locked) or discarded.
  - V(present) makes a layer over O(path) unless one is open there; V(committed) and
    V(discarded) act on the layer O(id), or on the open layer over O(path).
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
      - Required with O(state=present); with the other states, O(path) or O(id).
    type: path
  id:
    description:
      - The layer's id (as C(almost layer list) and this module's RV(layer.id) give it).
    type: str
  state:
    description:
      - V(present) - a layer is open over O(path) (made if there is none).
      - V(committed) - the layer's changes are applied to the system files and the layer is gone.
        A layer already committed (the last commit of O(id), or no open layer over O(path))
        is no change.
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
    description: The layer's changes, on commit and discard.
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
      description: The directory it covers, inside the root.
      type: str
    mounted:
      description: Whether it is mounted.
      type: bool
    pending:
      description: The act left to the next boot (commit, discard), or null.
      type: str
  sample: {id: 9f3c2a1b, path: /usr, mounted: true, pending: null, temporary: false}
changes:
  description:
    - The layer's changes, as C(almost layer diff --json) gives them (before the commit or
      discard). Each has path, change (added, modified, metadata, deleted, replaced), type,
      sizes, hashes, detail and, with O(patch), the unified diff of a text file.
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
    Almost, AlmostError, argument_spec, diff_text, encode_path, summary)


def find(layers, layer_id, path):
    if path is not None:
        # /usr/ names the same directory as /usr (almost refuses .. itself).
        path = os.path.normpath(path)
    for layer in layers:
        if layer_id is not None and layer['id'] == layer_id:
            return layer
        if layer_id is None and path is not None and layer['path'] == encode_path(path):
            return layer
    return None


def main():
    spec = argument_spec()
    spec.update(
        path=dict(type='path'),
        id=dict(type='str'),
        state=dict(type='str', default='present', choices=['present', 'committed', 'discarded']),
        temporary=dict(type='bool', default=False),
        at_boot=dict(type='bool', default=False),
        patch=dict(type='bool', default=True),
    )
    module = AnsibleModule(
        argument_spec=spec,
        required_if=[('state', 'present', ['path'])],
        required_one_of=[('path', 'id')],
        supports_check_mode=True,
    )
    p = module.params
    state = p['state']
    almost = Almost(module, p['root'], p['executable'])
    result = dict(changed=False, layer=None, changes=[], summary=summary([]))
    try:
        layer = find(almost.layers(), p['id'], p['path'])
        if layer is not None and p['id'] is not None and p['path'] is not None \
                and layer['path'] != encode_path(os.path.normpath(p['path'])):
            module.fail_json(msg='layer %s covers %s, not %s' % (p['id'], layer['path'], p['path']))
        if state == 'present':
            if layer is None and p['id'] is not None:
                # No layer of that id: let almost say so, with its error kind.
                almost.layer_diff(p['id'], patch=False)
            if layer is None:
                result['changed'] = True
                if not module.check_mode:
                    layer = almost.layer_new(p['path'], p['temporary'])
            if layer is not None:
                result['changes'] = almost.layer_diff(layer['id'], p['patch'])
        elif layer is None:
            if p['id'] is not None:
                undo = almost.status()['undo']
                if not (state == 'committed' and undo and undo.get('id') == p['id']):
                    # Neither open nor the last commit: almost names the error.
                    almost.layer_diff(p['id'], patch=False)
        else:
            wanted = 'commit' if state == 'committed' else 'discard'
            result['changes'] = almost.layer_diff(layer['id'], p['patch'])
            if p['at_boot'] and layer.get('pending') == wanted:
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
                        layer = find(almost.layers(), layer['id'], None) or layer
                    else:
                        layer = dict(layer, mounted=False)
            if module._diff and result['changed'] and not p['at_boot']:
                text = diff_text(result['changes'])
                result['diff'] = dict(
                    prepared='%s layer %s over %s:\n%s' % (
                        'commit' if state == 'committed' else 'discard', layer['id'],
                        layer['path'], text or '(no changes)\n'))
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
