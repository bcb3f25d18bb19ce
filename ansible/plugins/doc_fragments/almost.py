# -*- coding: utf-8 -*-
# Copyright: (c) the Almost contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):
    """The options every module of almost.system takes (module_utils' argument_spec)."""

    DOCUMENTATION = r'''
options:
  root:
    description:
      - The system Almost works on, C(almost --root). Its configuration, managed trees and
        state are all inside it. Tests point it at a sandbox.
    type: path
    default: /
  executable:
    description:
      - The C(almost) program to run. By default C(almost) is looked up on the managed
        host's PATH; the task fails, saying so, when it is not installed.
    type: path
'''
