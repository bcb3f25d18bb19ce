#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""A polkit authentication agent that dismisses every request, for the GUI
tests only (the as_user scenario): the user closing the password dialog.

Registers with polkitd (on the system bus of tests/gui/run.sh's private
namespace, never the machine's) for one process, given as PID, and answers
each BeginAuthentication with org.freedesktop.PolicyKit1.Error.Cancelled:
polkitd then reports the request as dismissed and pkexec exits 126.
Writes READY_FILE once registered, and a line to it per dismissal."""

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
PATH = "/org/almost/TestDismissAgent"


def start_time(pid):
    # Field 22 of /proc/PID/stat, after the command name in parentheses.
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return int(rest[19])


def main():
    pid, ready = int(sys.argv[1]), sys.argv[2]
    bus = Gio.bus_get_sync(Gio.BusType.SYSTEM, None)

    def on_call(_conn, _sender, _path, _iface, method, params, invocation):
        if method == "BeginAuthentication":
            with open(ready, "a") as f:
                f.write(f"dismissed {params[0]}\n")
            invocation.return_dbus_error("org.freedesktop.PolicyKit1.Error.Cancelled",
                                         "dismissed by the test agent")
        else:
            invocation.return_value(None)

    node = Gio.DBusNodeInfo.new_for_xml(AGENT_XML)
    bus.register_object(PATH, node.interfaces[0], on_call, None, None)
    subject = ("unix-process", {"pid": GLib.Variant("u", pid),
                                "start-time": GLib.Variant("t", start_time(pid))})
    bus.call_sync("org.freedesktop.PolicyKit1", "/org/freedesktop/PolicyKit1/Authority",
                  "org.freedesktop.PolicyKit1.Authority", "RegisterAuthenticationAgent",
                  GLib.Variant("((sa{sv})ss)", (subject, "C.UTF-8", PATH)),
                  None, Gio.DBusCallFlags.NONE, -1, None)
    with open(ready, "a") as f:
        f.write("registered\n")
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
