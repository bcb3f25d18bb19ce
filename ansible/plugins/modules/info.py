#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) the Almost contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: info
short_description: Almost's state as facts - protection, layers, configuration, audit log
version_added: 0.1.0
description:
  - Gathers, from C(almost --json) on the managed host, the measured protection mode with
    the counts per managed path, the layers, the configuration (one C(almost overview); with
    an almost older than that command, C(almost status), C(almost layer list) and
    C(almost config show)), the last commit that can be undone, and the recent entries of
    the audit log (C(almost log)), and sets them as the fact C(almost).
  - Changes nothing. Needs root for the layers' change counts and the audit log
    (C(become=true)).
  - The history of commits (C(almost layer history)) and a report of what needs a restart
    do not exist in C(almost) yet; they will be added here when they do.
author:
  - Almost contributors (@almost)
options:
  log_lines:
    description:
      - How many of the last audit entries to return (0 for none).
    type: int
    default: 20
extends_documentation_fragment:
  - almost.system.almost
attributes:
  check_mode:
    support: full
    description: Reads only.
  diff_mode:
    support: none
    description: Nothing changes, so there is nothing to show.
  facts:
    support: full
    description: Sets the fact C(almost).
seealso:
  - module: almost.system.protection
  - module: almost.system.layer
'''

EXAMPLES = r'''
- name: Gather Almost's state
  almost.system.info:
  become: true

- name: Report the machines that are not locked
  ansible.builtin.debug:
    msg: "{{ inventory_hostname }} is {{ almost.status.mode }}"
  when: almost.status.mode != 'locked'
'''

RETURN = r'''
ansible_facts:
  description: The fact C(almost).
  returned: always
  type: complex
  contains:
    almost:
      description: Almost's state on the host.
      type: complex
      contains:
        version:
          description: The version of almost.
          type: str
          sample: 0.1.0
        status:
          description: The measured state (mode, paths with counts, relock_at, runs,
            offline_update, interrupted_commit, undo).
          type: dict
        layers:
          description: The layers (id, path, paths - every directory a layer covers -, system,
            mounted, changes, size, temporary, pending, created).
          type: list
          elements: dict
        config:
          description: The effective configuration (default_mode, paths, exclude, keep_commits).
          type: dict
        log:
          description: The recent audit entries, oldest first (time, command, argv, user,
            result, exit_code, paths...).
          type: list
          elements: dict
        protocol:
          description: The protocol version of almost's results (null before almost had one).
          type: raw
almost_error:
  description: When almost failed, its error kind, message, exit code and the command.
  returned: failure
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.almost.system.plugins.module_utils.almost import (
    Almost, AlmostError, argument_spec)


def main():
    spec = argument_spec()
    spec.update(log_lines=dict(type='int', default=20))
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    if module.params['log_lines'] < 0:
        module.fail_json(msg='log_lines must be 0 or more, not %d' % module.params['log_lines'])
    almost = Almost(module, module.params['root'], module.params['executable'])
    try:
        facts = almost.overview()
        facts.update(
            version=almost.version(),
            log=almost.log(module.params['log_lines']) if module.params['log_lines'] else [],
        )
    except AlmostError as e:
        almost.warn_all()
        e.fail(module)
    almost.warn_all()
    facts['protocol'] = almost.protocol
    module.exit_json(changed=False, ansible_facts=dict(almost=facts))


if __name__ == '__main__':
    main()
