# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests of ansible/plugins/module_utils/almost.py without Ansible:
the protocol's path encoding, reading almost's JSON lines (mixed with a
command's output under almost run), errors without a JSON error event,
and the diff text. Run by tests/ansible/run.sh (python3 -m unittest)."""

import importlib.util
import json
import os
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SPEC = importlib.util.spec_from_file_location(
    'almost_utils', os.path.join(HERE, '..', '..', 'ansible', 'plugins', 'module_utils', 'almost.py'))
almost = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(almost)


class FakeModule:
    """What Almost uses of AnsibleModule: run_command answers from a table."""

    def __init__(self, answers):
        self.answers = answers
        self.argvs = []
        self.warned = []

    def get_bin_path(self, name, required=False):
        return '/fake/bin/' + name

    def run_command(self, argv, pass_fds=(), **_kwargs):
        self.argvs.append(argv)
        answer = self.answers.pop(0)
        if len(answer) == 4:
            # (rc, stdout, stderr, what almost writes to its --json-fd)
            rc, out, err, events = answer
            os.write(pass_fds[0], events.encode())
            return rc, out, err
        return answer

    def warn(self, text):
        self.warned.append(text)

    def fail_json(self, **kwargs):
        raise AssertionError('fail_json: %r' % kwargs)


def line(**event):
    return json.dumps(event) + '\n'


class Paths(unittest.TestCase):
    # The protocol's strings (protocol/src/path.rs) decode to the bytes
    # they name; a backslash is doubled, other bytes are \xNN.
    def test_decode(self):
        self.assertEqual(almost.decode_path('/usr/caf\\xe9'), b'/usr/caf\xe9')
        self.assertEqual(almost.decode_path('/usr/a\\\\xe9'), b'/usr/a\\xe9')
        self.assertEqual(almost.decode_path('/usr/é'), '/usr/é'.encode())
        self.assertNotEqual(almost.decode_path('/usr/\\xff'), almost.decode_path('/usr/\\xfe'))

    def test_encode_is_what_almost_writes_for_text(self):
        self.assertEqual(almost.encode_path('/usr/a\\b'), '/usr/a\\\\b')
        self.assertEqual(almost.decode_path(almost.encode_path('/usr/a\\b')), b'/usr/a\\b')

    def test_show(self):
        self.assertEqual(almost.show_path('/usr/\\xff'), '/usr/\\xff')
        self.assertEqual(almost.show_path('/usr/x'), '/usr/x')


class Calls(unittest.TestCase):
    def test_argv_puts_the_subcommand_first_and_positionals_after_dashes(self):
        m = FakeModule([(0, line(event='result', command='config', default_mode='keep',
                                 paths=['/usr'], exclude=[]), '')])
        a = almost.Almost(m, root='/r')
        a.config_set('paths', ['-weird', '/usr'])
        self.assertEqual(m.argvs[0], ['/fake/bin/almost', 'config', 'set', '--root', '/r',
                                      '--json', '--', 'paths', '-weird', '/usr'])

    def test_error_event_gives_kind_message_and_code(self):
        m = FakeModule([(4, line(event='progress', phase='check', done=1, total=None, path='/usr')
                         + line(event='error', kind='config', message='bad', exit_code=4), '')])
        with self.assertRaises(almost.AlmostError) as e:
            almost.Almost(m).config()
        self.assertEqual((e.exception.kind, e.exception.message, e.exception.exit_code),
                         ('config', 'bad', 4))

    def test_config_set_all_is_one_call_with_key_value_words(self):
        m = FakeModule([(0, line(event='result', command='config', default_mode='keep',
                                 paths=['/opt'], exclude=[]), '')])
        a = almost.Almost(m, root='/r')
        got = a.config_set_all(dict(paths=['/opt', '-weird'], exclude=[], default_mode='keep'))
        self.assertEqual(m.argvs, [['/fake/bin/almost', 'config', 'set', '--root', '/r', '--json',
                                    '--', 'paths=/opt', 'paths=-weird', 'exclude=',
                                    'default_mode=keep']])
        self.assertEqual(got['exclude'], [])

    def test_failure_without_json_takes_the_kind_of_the_exit_code(self):
        # An almost older than usage errors as events prints them as text.
        m = FakeModule([(2, '', 'error: unexpected argument\n')])
        with self.assertRaises(almost.AlmostError) as e:
            almost.Almost(m).status()
        self.assertEqual(e.exception.kind, 'usage')
        self.assertIn('unexpected argument', e.exception.message)

    def test_no_result_is_an_error(self):
        m = FakeModule([(0, 'not json\n', '')])
        with self.assertRaises(almost.AlmostError):
            almost.Almost(m).status()

    def test_run_keeps_the_commands_output_and_its_status(self):
        # almost's events come through --json-fd; stdout is the command's,
        # even a line that looks like an event.
        events = (line(event='progress', phase='unlock', done=1, total=None, path='/usr')
                  + line(event='result', protocol=1, command='run', exit_code=3))
        out = '  indented output\n{"event": "result", "exit_code": 0}\n'
        m = FakeModule([(3, out, 'E: something\n', events)])
        rc, stdout, stderr = almost.Almost(m, root='/r').run(['apt-get', 'upgrade'])
        self.assertEqual((rc, stdout, stderr), (3, out, 'E: something\n'))
        argv = m.argvs[0]
        self.assertEqual(argv[:5], ['/fake/bin/almost', 'run', '--root', '/r', '--json-fd'])
        self.assertEqual(argv[6:], ['--', 'apt-get', 'upgrade'])

    def test_warnings_and_a_newer_protocol_are_said(self):
        m = FakeModule([(0, line(event='warning', message='finished the interrupted commit')
                         + line(event='result', protocol=7, command='layer list', layers=[]), '')])
        a = almost.Almost(m)
        self.assertEqual(a.layers(), [])
        a.warn_all()
        self.assertEqual(len(m.warned), 2)
        self.assertIn('finished the interrupted commit', m.warned[0])
        self.assertIn('protocol 7', m.warned[1])
        self.assertEqual(a.protocol, 7)


class Overview(unittest.TestCase):
    # One almost overview when almost has it; status, layer list and
    # config show from an almost older than the command (a usage error).
    def test_one_call(self):
        m = FakeModule([(0, line(event='result', protocol=1, command='overview',
                                 status=dict(mode='locked', paths=[]),
                                 layers=[dict(id='a1', path='/usr')],
                                 config=dict(default_mode='keep', paths=['/usr'], exclude=[]),
                                 watch=[]), '')])
        got = almost.Almost(m).overview()
        self.assertEqual((got['status']['mode'], got['layers'][0]['id'], got['config']['paths']),
                         ('locked', 'a1', ['/usr']))
        self.assertEqual(len(m.argvs), 1)

    def test_older_almost(self):
        m = FakeModule([
            (2, '', "error: unrecognized subcommand 'overview'\n"),
            (0, line(event='result', command='status', mode='partial', paths=[]), ''),
            (0, line(event='result', command='layer list', layers=[]), ''),
            (0, line(event='result', command='config', default_mode='locked', paths=['/usr'],
                     exclude=['/usr/local']), ''),
        ])
        got = almost.Almost(m).overview()
        self.assertEqual((got['status']['mode'], got['layers'], got['config']['default_mode']),
                         ('partial', [], 'locked'))
        self.assertEqual([a[1] for a in m.argvs], ['overview', 'status', 'layer', 'config'])


class Texts(unittest.TestCase):
    def test_diff_text(self):
        changes = [
            dict(path='/usr/a', change='added', type='file', new_size=3),
            dict(path='/usr/\\xff', change='deleted', type='file', new_size=None),
            dict(path='/usr/b', change='modified', type='file', new_size=2,
                 patch='--- a/usr/b\n+++ b/usr/b\n@@ -1 +1 @@\n-x\n+y\n'),
        ]
        self.assertEqual(almost.diff_text(changes),
                         'added    /usr/a (file, 3 bytes)\n'
                         'deleted  /usr/\\xff (file)\n'
                         'modified /usr/b (file, 2 bytes)\n'
                         '--- a/usr/b\n+++ b/usr/b\n@@ -1 +1 @@\n-x\n+y\n')
        self.assertEqual(almost.summary(changes)['added'], 1)

    def test_diff_text_of_several_directories_is_grouped_per_directory(self):
        # As layer diff gives them: per part in the order of paths, each
        # under a heading with its counts; /usrx is not under /usr.
        changes = [
            dict(path='/usr/a', change='added', type='file', new_size=3),
            dict(path='/etc/b', change='modified', type='file', new_size=2),
            dict(path='/etc/c', change='deleted', type='file'),
            dict(path='/usrx/d', change='added', type='file', new_size=1),
        ]
        self.assertEqual(almost.diff_text(changes, ['/usr', '/opt', '/etc']),
                         '== /usr: 1 added\n'
                         'added    /usr/a (file, 3 bytes)\n'
                         '== /opt: no changes\n'
                         '== /etc: 1 modified, 1 deleted\n'
                         'modified /etc/b (file, 2 bytes)\n'
                         'deleted  /etc/c (file)\n'
                         '== (elsewhere): 1 added\n'
                         'added    /usrx/d (file, 1 bytes)\n')
        # One directory: no heading, as before.
        self.assertEqual(almost.diff_text(changes[:1], ['/usr']), 'added    /usr/a (file, 3 bytes)\n')

    def test_config_text(self):
        self.assertEqual(almost.config_text(dict(default_mode='locked', paths=['/usr'], exclude=[],
                                                 keep_commits=10)),
                         'default_mode = "locked"\npaths = ["/usr"]\nexclude = []\n'
                         'keep_commits = 10\n')


class Layers(unittest.TestCase):
    def test_layer_new_of_several_directories_and_the_system_layer(self):
        m = FakeModule([
            (0, line(event='result', command='layer new', id='a1', path='/usr/lib',
                     paths=['/usr/lib', '/opt'], system=False), ''),
            (0, line(event='result', command='layer new', id='b2', path='/usr',
                     paths=['/usr', '/opt', '/etc'], system=True, left_out=['/var/lib/dpkg']), ''),
        ])
        a = almost.Almost(m)
        got = a.layer_new(['/usr/lib', '/opt'])
        self.assertEqual((got['paths'], got['system'], got['mounted']), (['/usr/lib', '/opt'], False, True))
        got = a.layer_new(None, temporary=True)
        self.assertEqual((got['paths'], got['system'], got['left_out']),
                         (['/usr', '/opt', '/etc'], True, ['/var/lib/dpkg']))
        self.assertEqual(m.argvs[0][1:], ['layer', 'new', '--root', '/', '--json', '--', '/usr/lib', '/opt'])
        self.assertEqual(m.argvs[1][1:], ['layer', 'new', '--system', '--temporary', '--root', '/', '--json'])

    def test_an_older_almosts_layer_covers_its_path_alone(self):
        m = FakeModule([(0, line(event='result', command='layer list',
                                 layers=[dict(id='a1', path='/usr')]), '')])
        got = almost.Almost(m).layers()[0]
        self.assertEqual((got['paths'], got['system']), (['/usr'], False))

    def test_keep_commits_is_set_as_its_digits(self):
        m = FakeModule([(0, line(event='result', command='config', default_mode='keep',
                                 paths=['/usr'], exclude=[], keep_commits=3), '')])
        got = almost.Almost(m).config_set_all(dict(keep_commits=3))
        self.assertEqual(m.argvs[0][-2:], ['--', 'keep_commits=3'])
        self.assertEqual(got['keep_commits'], 3)

    def test_keep_commits_absent_is_the_default(self):
        m = FakeModule([(0, line(event='result', command='config', default_mode='keep',
                                 paths=['/usr'], exclude=[]), '')])
        self.assertEqual(almost.Almost(m).config()['keep_commits'], 10)


if __name__ == '__main__':
    unittest.main()
