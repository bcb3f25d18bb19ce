#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""A polkit authentication agent for the GUI tests only (the as_user
scenario), standing in for GNOME's password dialog.

Usage: test_agent.py PID LOG dismiss
       test_agent.py PID LOG password PASSWORD

Registers with polkitd (on the system bus of tests/gui/run.sh's private
namespace, never the machine's) for one process, given as PID, and answers
each BeginAuthentication:
- dismiss: with org.freedesktop.PolicyKit1.Error.Cancelled, the user
  closing the dialog: polkitd reports the request as dismissed and pkexec
  exits 126.
- password: as the dialog does with what the user typed: runs polkit's
  setuid polkit-agent-helper-1 for the identity asked for, hands it the
  cookie, answers its PAM prompts with PASSWORD, and waits for its
  verdict. The helper checks the password through PAM (pam_unix against
  /etc/shadow, which run.sh replaces in its namespace only) and itself
  tells polkitd the outcome; a wrong password fails the request (as when
  the user gives up after a wrong try) and pkexec exits 127.
Writes LOG once registered, and a line to it per request."""

import os
import pwd
import stat
import subprocess
import sys

import gi

gi.require_version("Gio", "2.0")
from gi.repository import Gio, GLib  # noqa: E402

AGENT_XML = """
<node>
  <interface name="org.freedesktop.PolicyKit1.AuthenticationAgent">
    <method name="BeginAuthentication">
      <arg type="s" name="action_id" direction="in"/>
      <arg type="s" name="message" direction="in"/>
      <arg type="s" name="icon_name" direction="in"/>
      <arg type="a{ss}" name="details" direction="in"/>
      <arg type="s" name="cookie" direction="in"/>
      <arg type="a(sa{sv})" name="identities" direction="in"/>
    </method>
    <method name="CancelAuthentication">
      <arg type="s" name="cookie" direction="in"/>
    </method>
  </interface>
</node>
"""
PATH = "/org/almost/TestAgent"
HELPERS = ("/usr/lib/polkit-1/polkit-agent-helper-1", "/usr/libexec/polkit-agent-helper-1")


def start_time(pid):
    # Field 22 of /proc/PID/stat, after the command name in parentheses.
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return int(rest[19])


def user_of(identities):
    """The user name of the first unix-user identity polkitd offers."""
    for kind, details in identities:
        if kind == "unix-user":
            return pwd.getpwuid(details["uid"]).pw_name
    raise ValueError(f"no unix-user among {identities}")


def setuid_helper():
    """polkit's agent helper; it must be setuid root to check a password."""
    for helper in HELPERS:
        if os.path.isfile(helper) and os.stat(helper).st_mode & stat.S_ISUID:
            return helper
    sys.exit(f"test_agent.py: none of {HELPERS} is a setuid program (package polkitd)")


def authenticate(helper, user, cookie, password):
    """Runs the helper as GNOME's agent does; returns (verdict, transcript)."""
    proc = subprocess.Popen([helper, user], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    proc.stdin.write(cookie + "\n")
    proc.stdin.flush()
    said = []
    verdict = "FAILURE"
    for line in proc.stdout:
        line = line.rstrip("\n")
        said.append(line)
        if line.startswith(("PAM_PROMPT_ECHO_OFF", "PAM_PROMPT_ECHO_ON")):
            proc.stdin.write(password + "\n")
            proc.stdin.flush()
        elif line in ("SUCCESS", "FAILURE"):
            verdict = line
            break
    proc.stdin.close()
    proc.wait(30)
    return verdict, said


def main():
    args = sys.argv[1:]
    if not ((len(args) == 3 and args[2] == "dismiss")
            or (len(args) == 4 and args[2] == "password")):
        sys.exit(__doc__.split("\n\n")[1])
    pid, log, mode = int(args[0]), args[1], args[2]
    password = args[3] if mode == "password" else None
    helper = setuid_helper() if mode == "password" else None
    bus = Gio.bus_get_sync(Gio.BusType.SYSTEM, None)

    def note(line):
        with open(log, "a") as f:
            f.write(line + "\n")

    def on_call(_conn, _sender, _path, _iface, method, params, invocation):
        if method != "BeginAuthentication":
            invocation.return_value(None)
            return
        action, cookie, identities = params[0], params[4], params[5]
        if mode == "dismiss":
            note(f"dismissed {action}")
            invocation.return_dbus_error("org.freedesktop.PolicyKit1.Error.Cancelled",
                                         "dismissed by the test agent")
            return
        user = user_of(identities)
        verdict, said = authenticate(helper, user, cookie, password)
        note(f"{verdict} {action} as {user}: {' | '.join(said)}")
        if verdict == "SUCCESS":
            invocation.return_value(None)
        else:
            invocation.return_dbus_error("org.freedesktop.PolicyKit1.Error.Failed",
                                         "authentication failed")

    node = Gio.DBusNodeInfo.new_for_xml(AGENT_XML)
    bus.register_object(PATH, node.interfaces[0], on_call, None, None)
    subject = ("unix-process", {"pid": GLib.Variant("u", pid),
                                "start-time": GLib.Variant("t", start_time(pid))})
    bus.call_sync("org.freedesktop.PolicyKit1", "/org/freedesktop/PolicyKit1/Authority",
                  "org.freedesktop.PolicyKit1.Authority", "RegisterAuthenticationAgent",
                  GLib.Variant("((sa{sv})ss)", (subject, "C.UTF-8", PATH)),
                  None, Gio.DBusCallFlags.NONE, -1, None)
    note("registered")
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
