# -*- coding: utf-8 -*-
# Copyright: (c) the Almost contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one place where the modules of almost.system talk to ``almost``.

Every call to the ``almost`` program and every read of its output is here:
it runs ``almost SUBCOMMAND --root ROOT --json -- ARGS`` as an argv vector
(never through a shell), reads the JSON events it prints one per line
(``progress``, ``warning``, ``result``, ``error``; see docs/almost.md) and
hands the modules the fields they use, by their documented names. Text
output is never read, except the version line of ``almost --version``.

When ``almost`` changes the shape of a result, only this file changes.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import tempfile

# The exit codes of almost and their error kinds (core/src/error.rs,
# docs/almost.md "Exit codes"). Used when almost failed without printing
# an error event (killed, or an almost older than usage errors as events).
ERROR_KINDS = {
    1: 'internal',
    2: 'usage',
    3: 'not-root',
    4: 'config',
    5: 'invalid-path',
    6: 'partial',
    7: 'unsupported',
    8: 'busy',
    9: 'locked',
    10: 'cancelled',
    11: 'no-space',
    12: 'forbidden',
}

# The newest protocol version these modules were written for. A result
# without a "protocol" field comes from an almost older than the field.
KNOWN_PROTOCOL = 1

# The kind given to failures that happen before almost could say anything.
NOT_INSTALLED = 'not-installed'

CONFIG_KEYS = ('default_mode', 'paths', 'exclude', 'keep_commits')

# keep_commits when almost does not say (an almost older than the key,
# or a file without it): core/src/config.rs DEFAULT_KEEP_COMMITS.
DEFAULT_KEEP_COMMITS = 10

# The configuration file, inside the root.
CONFIG_FILE = 'etc/almost/almost.toml'


class AlmostError(Exception):
    """A failure of almost: its error kind, its message and exit code."""

    def __init__(self, kind, message, exit_code=None, command=None, result=None):
        super(AlmostError, self).__init__(message)
        self.kind = kind
        self.message = message
        self.exit_code = exit_code
        self.command = command
        self.result = result

    def details(self):
        return dict(kind=self.kind, message=self.message, exit_code=self.exit_code,
                    command=self.command)

    def fail(self, module, **extra):
        """Ends the module with this failure (msg, and almost_error with
        the kind, message, exit code and command line)."""
        module.fail_json(msg='almost %s failed (%s): %s' % (
            self.command or '', self.kind, self.message),
            almost_error=self.details(), **extra)


def encode_path(path):
    """The protocol's string for a path given as text: UTF-8 as is, a
    backslash doubled (protocol/src/path.rs)."""
    return path.replace('\\', '\\\\')


def decode_path(text):
    """The bytes of a path from the protocol's string: ``\\\\`` is a
    backslash, ``\\xNN`` the byte NN, everything else UTF-8. A string
    that is not the protocol's encoding is taken as it is."""
    if not isinstance(text, str) or '\\' not in text:
        return text.encode('utf-8', 'surrogateescape') if isinstance(text, str) else text
    out = bytearray()
    i = 0
    while i < len(text):
        c = text[i]
        if c == '\\' and text[i + 1:i + 2] == '\\':
            out += b'\\'
            i += 2
        elif c == '\\' and re.match(r'x[0-9a-f]{2}', text[i + 1:i + 4]):
            out.append(int(text[i + 2:i + 4], 16))
            i += 4
        else:
            out += c.encode('utf-8', 'surrogateescape')
            i += 1
    return bytes(out)


def show_path(text):
    """A path from the protocol, shown readably: valid UTF-8 as text,
    other bytes as \\xNN."""
    raw = decode_path(text)
    return raw.decode('utf-8', 'backslashreplace')


class Almost(object):
    """Runs almost for one module on one root.

    ``executable`` is the almost binary to run (default: ``almost`` found
    on PATH, as the package installs it); ``root`` is almost's ``--root``.
    """

    def __init__(self, module, root='/', executable=None):
        self.module = module
        self.root = root
        self.warnings = []
        self.protocol = None
        self.config_path = CONFIG_FILE
        self.binary = self._find(executable)

    def _find(self, executable):
        if executable:
            if os.path.isfile(executable) and os.access(executable, os.X_OK):
                return executable
            self.module.fail_json(
                msg='almost is not installed at %s (the executable option): no such executable'
                    % executable,
                almost_error=dict(kind=NOT_INSTALLED, message='no such executable: %s' % executable,
                                  exit_code=None, command=None))
        found = self.module.get_bin_path('almost', required=False)
        if not found:
            path = os.environ.get('PATH', '')
            self.module.fail_json(
                msg='almost is not installed on this host: no almost program on PATH (%s). '
                    'Install the almost package, or give the path of the binary in the '
                    'executable option.' % path,
                almost_error=dict(kind=NOT_INSTALLED, message='almost not found on PATH',
                                  exit_code=None, command=None))
        return found

    # --- the one runner ---------------------------------------------------

    def argv(self, words, args=()):
        """almost's argv: the subcommand's words first (as pkexec wants
        it too), the global options, then ``--`` and the positional
        arguments, so that no value is ever taken for an option."""
        argv = [self.binary] + list(words) + ['--root', self.root, '--json']
        if args:
            argv += ['--'] + list(args)
        return argv

    def call(self, words, args=(), expect_result=True):
        """Runs one almost command; returns its result event (a dict) or
        None when it prints none. Raises AlmostError on failure."""
        argv = self.argv(words, args)
        command = ' '.join(words)
        rc, out, err = self.module.run_command(argv, encoding='utf-8', errors='surrogateescape')
        result, error, _stray = self._events(out)
        if error is not None:
            raise AlmostError(error.get('kind') or ERROR_KINDS.get(rc, 'internal'),
                              error.get('message') or err.strip(),
                              error.get('exit_code', rc), command, result)
        if rc != 0:
            message = err.strip() or out.strip() or 'exit status %d' % rc
            raise AlmostError(ERROR_KINDS.get(rc, 'internal'), message, rc, command, result)
        if result is None and expect_result:
            raise AlmostError('internal', 'almost printed no result (stdout: %r, stderr: %r)'
                              % (out[-2000:], err[-2000:]), rc, command)
        return result

    def _events(self, out):
        result = None
        error = None
        stray = []
        for line in out.splitlines():
            if not line.strip():
                stray.append(line)
                continue
            try:
                event = json.loads(line)
            except ValueError:
                stray.append(line)
                continue
            if not isinstance(event, dict) or 'event' not in event:
                stray.append(line)
                continue
            kind = event.get('event')
            if kind == 'result':
                result = self._result(event)
            elif kind == 'error':
                error = event
            elif kind == 'warning':
                self.warnings.append(event.get('message', ''))
        return result, error, stray

    def _result(self, event):
        version = event.get('protocol')
        if version is not None:
            self.protocol = version
            try:
                major = int(str(version).split('.', maxsplit=1)[0])
            except ValueError:
                major = None
            if major is not None and major > KNOWN_PROTOCOL:
                warning = ('almost speaks protocol %s, newer than this collection knows (%d): '
                           'update the almost.system collection' % (version, KNOWN_PROTOCOL))
                if warning not in self.warnings:
                    self.warnings.append(warning)
        return event

    def warn_all(self):
        """Passes almost's warnings on to Ansible's."""
        for warning in self.warnings:
            self.module.warn('almost: %s' % warning)
        self.warnings = []

    # --- typed reads --------------------------------------------------------

    def version(self):
        rc, out, err = self.module.run_command([self.binary, '--version'])
        if rc != 0:
            return None
        words = out.split()
        return words[-1] if words else None

    def status(self):
        """The measured state: mode (locked, unlocked, partial), the paths
        with their counts, a pending timed re-lock, running ``almost run``
        commands, the commit that can be undone."""
        return self._status(self.call(['status']))

    @staticmethod
    def _status(r):
        return dict(
            mode=r.get('mode'),
            paths=[dict(path=p.get('path'), mode=p.get('mode'), locked=p.get('locked'),
                        unlocked=p.get('unlocked'), skipped=p.get('skipped'),
                        covered=p.get('covered'), error_count=p.get('error_count'),
                        unsupported=p.get('unsupported'), read_only=p.get('read_only'),
                        mount_points=p.get('mount_points'), overlays=p.get('overlays'))
                   for p in r.get('paths') or []],
            relock_at=r.get('relock_at'),
            runs=r.get('runs') or [],
            restore=r.get('restore'),
            offline_update=r.get('offline_update'),
            interrupted_commit=r.get('interrupted_commit'),
            undo=r.get('undo'),
        )

    def overview(self):
        """The status, the layers and the configuration, from one
        ``almost overview`` (protocol 1), or from ``status``, ``layer
        list`` and ``config show`` with an almost older than it."""
        try:
            r = self.call(['overview'])
        except AlmostError as e:
            if e.kind != 'usage':
                raise
            return dict(status=self.status(), layers=self.layers(), config=self.config())
        return dict(status=self._status(r.get('status') or {}),
                    layers=[self._layer(l) for l in r.get('layers') or []],
                    config=self._config(r.get('config') or {}))

    def set_mode(self, locked):
        """Locks or unlocks every managed tree; returns the mode after and
        how many entries had their flag changed."""
        if locked:
            r = self.call(['lock'])
        else:
            r = self.call(['unlock', '--yes'])
        return dict(mode=r.get('mode'), changed=r.get('changed') or 0)

    @staticmethod
    def _config(r):
        config = dict((key, r.get(key)) for key in CONFIG_KEYS)
        if config['keep_commits'] is None:
            config['keep_commits'] = DEFAULT_KEEP_COMMITS
        return config

    def config(self):
        """The effective configuration: default_mode, paths, exclude,
        keep_commits."""
        r = self.call(['config', 'show'])
        if isinstance(r.get('file'), str):
            # Protocol 1 names the file (a path inside the root).
            self.config_path = decode_path(r['file']).decode('utf-8', 'surrogateescape').lstrip('/')
        return self._config(r)

    def config_set(self, key, values):
        """Validates and writes one key; returns the configuration after."""
        if isinstance(values, str):
            values = [values]
        return self._config(self.call(['config', 'set'], [key] + list(values)))

    def config_set_all(self, wanted):
        """Sets several keys at once (``config set KEY=VALUE…``): almost
        validates them together and writes them in one replace, or writes
        nothing. A list key with no value is the empty list (``KEY=``).
        Returns the configuration after."""
        words = []
        for key, value in wanted.items():
            if isinstance(value, (list, tuple)):
                values = list(value)
            else:
                # default_mode, keep_commits: one value (a number as its digits).
                values = [str(value)]
            if not values:
                words.append('%s=' % key)
            words.extend('%s=%s' % (key, v) for v in values)
        return self._config(self.call(['config', 'set'], words))

    def layers(self):
        """The layers: id, path (the first directory), paths (all of
        them), system, mounted, changes, size, temporary, pending (an act
        left to the next boot), created."""
        r = self.call(['layer', 'list'])
        return [self._layer(l) for l in r.get('layers') or []]

    @staticmethod
    def _layer(l):
        # An almost older than layers of several directories gives path
        # alone: its layers cover that one directory and none is a system one.
        paths = l.get('paths') or ([l['path']] if l.get('path') is not None else [])
        return dict(id=l.get('id'), path=l.get('path'), paths=paths,
                    system=bool(l.get('system')), mounted=l.get('mounted'),
                    changes=l.get('changes'), size=l.get('size'),
                    temporary=l.get('temporary'), pending=l.get('pending'),
                    created=l.get('created'))

    def layer_new(self, paths, temporary=False):
        """A layer over the directories ``paths`` (one layer over them
        all), or with ``paths`` None the system layer (``--system``)."""
        words = ['layer', 'new'] + (['--system'] if paths is None else [])
        words += ['--temporary'] if temporary else []
        r = self.call(words, [] if paths is None else list(paths))
        layer = self._layer(r)
        # Made now: mounted, no change, no pending act (layer new says
        # neither); left_out: the system layer's directories the root lacks.
        layer.update(mounted=True, changes=0, pending=None,
                     left_out=r.get('left_out') or [])
        return layer

    def layer_diff(self, layer_id, patch=True):
        """The changes of a layer: a list of dicts with path, change
        (added, modified, metadata, deleted, replaced), type, sizes,
        hashes, detail and, for text files with ``patch``, a unified diff."""
        words = ['layer', 'diff'] + (['--patch'] if patch else [])
        r = self.call(words, [layer_id])
        return r.get('changes') or []

    def layer_commit(self, layer_id, at_boot=False):
        words = ['layer', 'commit', '--yes'] + (['--at-boot'] if at_boot else [])
        return self.call(words, [layer_id])

    def layer_discard(self, layer_id, at_boot=False):
        words = ['layer', 'discard', '--yes'] + (['--at-boot'] if at_boot else [])
        return self.call(words, [layer_id])

    def log(self, lines=20):
        """The last audit entries, oldest first."""
        r = self.call(['log', '-n', str(int(lines))])
        return r.get('entries') or []

    def run(self, command):
        """``almost run -- COMMAND``: unlocks, runs it, puts the mode back.
        Returns (rc, output, stderr): COMMAND's status and what it printed.
        almost's JSON lines go to a file of their own (``--json-fd``), so
        COMMAND's standard output is its own."""
        with tempfile.TemporaryFile() as events:
            fd = events.fileno()
            argv = ([self.binary, 'run', '--root', self.root, '--json-fd', str(fd), '--']
                    + list(command))
            rc, out, err = self.module.run_command(argv, encoding='utf-8',
                                                   errors='surrogateescape', pass_fds=(fd,))
            events.seek(0)
            lines = events.read().decode('utf-8', 'surrogateescape')
        result, error, _stray = self._events(lines)
        if error is not None:
            raise AlmostError(error.get('kind') or 'internal', error.get('message') or '',
                              error.get('exit_code', rc), 'run')
        if result is not None and isinstance(result.get('exit_code'), int):
            # Protocol 1: the command's status, said apart from almost's own.
            rc = result['exit_code']
        return rc, out, err


def part_of(path, parts):
    """The directory of ``parts`` that ``path`` lies under (protocol
    strings, as layer diff gives both), or None."""
    for part in parts:
        if path == part or path.startswith(part.rstrip('/') + '/'):
            return part
    return None


def diff_text(changes, parts=None):
    """The changes of a layer as one readable text, for Ansible's diff
    output: one line per change, then the unified diff when there is one.
    With the directories of a layer of several (``parts``), grouped per
    directory in their order, each under a heading with its counts, as
    ``almost layer diff`` prints them."""
    if parts and len(parts) > 1:
        groups = [(part, [c for c in changes if part_of(c.get('path') or '', parts) == part])
                  for part in parts]
        stray = [c for c in changes if part_of(c.get('path') or '', parts) is None]
        if stray:
            groups.append(('(elsewhere)', stray))
        text = ''
        for part, group in groups:
            counts = summary(group)
            said = ', '.join('%d %s' % (counts[k], k) for k in counts if counts[k])
            text += '== %s: %s\n' % (show_path(part), said or 'no changes')
            text += diff_text(group)
        return text
    lines = []
    for c in changes:
        what = c.get('change')
        line = '%-8s %s (%s' % (what, show_path(c.get('path')), c.get('type'))
        if c.get('new_size') is not None and what != 'deleted':
            line += ', %s bytes' % c.get('new_size')
        line += ')'
        if c.get('detail'):
            line += ': %s' % c.get('detail')
        lines.append(line)
        if c.get('patch'):
            lines.append(c['patch'].rstrip('\n'))
    return '\n'.join(lines) + ('\n' if lines else '')


def summary(changes):
    """How many changes of each kind."""
    counts = dict((k, 0) for k in ('added', 'modified', 'metadata', 'deleted', 'replaced'))
    for c in changes:
        counts[c.get('change')] = counts.get(c.get('change'), 0) + 1
    return counts


def config_text(config):
    """A configuration as almost.toml lines, for Ansible's diff output."""
    if config is None:
        return ''
    return ''.join('%s = %s\n' % (key, json.dumps(config.get(key)))
                   for key in CONFIG_KEYS)


def argument_spec():
    """The options every module of the collection takes."""
    return dict(
        root=dict(type='path', default='/'),
        executable=dict(type='path'),
    )
