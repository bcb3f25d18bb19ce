#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) the Almost contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: run
short_description: Run a command with the system files unlocked (almost run), and say what needs a restart
version_added: 0.1.0
description:
  - Runs O(command) through C(almost run), which unlocks the managed trees, runs it, and then
    puts back the mode there was before (a locked system is locked again), also when the
    command fails. The weekly C(apt-get -y upgrade) of a locked fleet goes through it.
  - Afterwards it reports what needs a restart. C(almost) itself does not tell that yet, so
    the module reads what Debian's packages leave for it - C(/run/reboot-required) and
    C(/run/reboot-required.pkgs) under O(root), written by the packages that need a reboot
    (kernel, libc...) - and, on the real system only (O(root=/)), the services that
    C(needrestart -b) names when needrestart is installed.
  - The command runs as an argv vector, never through a shell. The task fails when the
    command exits with a status other than 0.
  - Runs C(almost) on the managed host (the C(almost) Debian package); needs root
    (C(become=true)).
author:
  - Almost contributors (@almost)
options:
  command:
    description:
      - The command and its arguments, for example V([apt-get, -y, upgrade]).
    type: list
    elements: str
    required: true
extends_documentation_fragment:
  - almost.system.almost
attributes:
  check_mode:
    support: partial
    description: Check mode is supported, but the command is not run.
    details: The command is not run, so what it would change is not known; the task says
      it would run it (changed).
  diff_mode:
    support: none
    description: What a command changes is not known beforehand.
notes:
  - The command's standard output is returned in RV(stdout) as it printed it, since almost's
    own JSON lines go to a descriptor of their own (C(almost run --json-fd)).
seealso:
  - module: almost.system.protection
'''

EXAMPLES = r'''
- name: Upgrade a locked machine (unlocked for the upgrade only)
  almost.system.run:
    command: [apt-get, -y, upgrade]
  environment:
    DEBIAN_FRONTEND: noninteractive
  register: upgrade
  become: true

- name: Say which machines need a reboot
  ansible.builtin.debug:
    msg: "reboot needed for {{ upgrade.restart.packages | join(', ') }}"
  when: upgrade.restart.reboot_required
'''

RETURN = r'''
rc:
  description: The command's exit status (128+N when it died of signal N).
  returned: always
  type: int
stdout:
  description: What the command printed on its standard output.
  returned: always
  type: str
stderr:
  description: What the command (and almost) printed on standard error.
  returned: always
  type: str
restart:
  description: What needs a restart after the command.
  returned: success
  type: dict
  contains:
    reboot_required:
      description: Whether C(ROOT/run/reboot-required) exists.
      type: bool
    packages:
      description: The packages named in C(ROOT/run/reboot-required.pkgs).
      type: list
      elements: str
    services:
      description: The services C(needrestart -b) says need a restart (only with O(root=/) and
        needrestart installed; else empty).
      type: list
      elements: str
    sources:
      description: What was read to tell (C(reboot-required), C(needrestart)).
      type: list
      elements: str
  sample: {reboot_required: true, packages: [linux-image-6.1.0-28-amd64], services: [cron.service], sources: [reboot-required]}
almost_error:
  description: When almost failed before the command ran, its error kind, message, exit code.
  returned: failure
  type: dict
'''

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.almost.system.plugins.module_utils.almost import (
    Almost, AlmostError, argument_spec)


def restart_report(module, root):
    report = dict(reboot_required=False, packages=[], services=[], sources=[])
    flag = os.path.join(root, 'run/reboot-required')
    report['sources'].append('reboot-required')
    if os.path.exists(flag):
        report['reboot_required'] = True
    try:
        with open(flag + '.pkgs') as f:
            report['packages'] = sorted(set(line.strip() for line in f if line.strip()))
    except (IOError, OSError):
        pass
    needrestart = module.get_bin_path('needrestart', required=False)
    if os.path.realpath(root) == '/' and needrestart:
        rc, out, _err = module.run_command([needrestart, '-b', '-r', 'l'])
        if rc == 0:
            report['sources'].append('needrestart')
            for line in out.splitlines():
                if line.startswith('NEEDRESTART-SVC:'):
                    report['services'].append(line.split(':', 1)[1].strip())
                elif line.startswith('NEEDRESTART-KSTA:') and line.split(':', 1)[1].strip() not in ('0', '1'):
                    # 2 or 3: a newer kernel is installed than the one running.
                    report['reboot_required'] = True
    return report


def main():
    spec = argument_spec()
    spec.update(command=dict(type='list', elements='str', required=True))
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    command = module.params['command']
    if not command:
        module.fail_json(msg='command is empty')
    almost = Almost(module, module.params['root'], module.params['executable'])
    if module.check_mode:
        module.exit_json(changed=True, rc=0, stdout='', stderr='',
                         msg='would run %s through almost run' % ' '.join(command))
    try:
        rc, out, err = almost.run(command)
    except AlmostError as e:
        almost.warn_all()
        e.fail(module, rc=e.exit_code, stdout='', stderr='')
    almost.warn_all()
    result = dict(changed=True, rc=rc, stdout=out, stderr=err,
                  restart=restart_report(module, module.params['root']))
    if rc != 0:
        module.fail_json(msg='%s exited with status %d (run through almost run; the protection '
                             'was put back)' % (command[0], rc), **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
