#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Drives the real almost-panel window through AT-SPI, as a user would:
finds widgets by their accessible names, presses and toggles them, and
checks both what the window says and what happened in the sandbox root
(lsattr, the config file, the committed tree). One log and one screenshot
per scenario under --results. Started by tests/gui/run.sh, never alone:
it needs the sandbox that script makes."""

import argparse
import contextlib
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import traceback

import gi

gi.require_version("Atspi", "2.0")
from gi.repository import Atspi  # noqa: E402

ARGS = None
PANEL = None
LOG = None


class Failure(Exception):
    pass


def log(*parts):
    line = " ".join(str(p) for p in parts)
    print(line, flush=True)
    if LOG:
        LOG.write(line + "\n")
        LOG.flush()


# --- the panel process ---------------------------------------------------------

def start_panel(env_extra=None, panel=None):
    global PANEL
    env = dict(os.environ)
    env.update(env_extra or {})
    for attempt in range(2):
        out = open(os.path.join(ARGS.results, "panel.log"), "a")
        env.setdefault("RUST_LOG", "almost_panel=debug")
        argv = [panel or ARGS.panel, "--root", ARGS.root]
        if os.environ.get("ALMOST_GUI_GDB"):
            # For crashes: a backtrace of every thread lands in panel.log.
            argv = ["gdb", "-q", "-batch", "-ex", "run", "-ex", "thread apply all bt 25",
                    "--args", *argv]
        PANEL = subprocess.Popen(argv, env=env,
                                 stdout=out, stderr=subprocess.STDOUT)
        with open(ARGS.pid_file, "w") as f:
            f.write(str(PANEL.pid))
        try:
            # About 2 runs in 50 fail to open a fresh display: retry once.
            return wait_for(lambda: PANEL.poll() is None and find_app(), 20, "the panel's window")
        except Failure:
            if attempt == 1 or PANEL.poll() is None:
                raise
            log("the panel exited early; starting it again")


def stop_panel():
    global PANEL
    if PANEL and PANEL.poll() is None:
        PANEL.send_signal(signal.SIGTERM)
        try:
            PANEL.wait(10)
        except subprocess.TimeoutExpired:
            PANEL.kill()
            PANEL.wait()
    PANEL = None


# --- the accessibility tree ------------------------------------------------------

def find_app():
    desktop = Atspi.get_desktop(0)
    for i in range(desktop.get_child_count()):
        app = desktop.get_child_at_index(i)
        if app is None:
            continue
        try:
            if app.get_process_id() == PANEL.pid or (
                    os.environ.get("ALMOST_GUI_GDB") and name(app) == "almost-panel"):
                return app
        except Exception:
            continue
    return None


def walk(node, depth=0, limit=60):
    if node is None or depth > limit:
        return
    yield node
    try:
        n = node.get_child_count()
    except Exception:
        return
    for i in range(n):
        try:
            child = node.get_child_at_index(i)
        except Exception:
            continue
        yield from walk(child, depth + 1, limit)


def shown(node):
    try:
        return node.get_extents(Atspi.CoordType.WINDOW).width > 0
    except Exception:
        return False


def role(node):
    try:
        return node.get_role_name()
    except Exception:
        return ""


def name(node):
    try:
        return node.get_name() or ""
    except Exception:
        return ""


def text_of(node):
    try:
        t = node.get_text_iface() if hasattr(node, "get_text_iface") else None
        if t is None:
            return ""
        return Atspi.Text.get_text(node, 0, Atspi.Text.get_character_count(node))
    except Exception:
        return ""


def find_all(roles, pattern, root=None, visible=True):
    app = root or find_app()
    if app is None:
        return []
    rx = re.compile(pattern)
    found = []
    for node in walk(app):
        if roles and role(node) not in roles:
            continue
        if not (rx.search(name(node)) or (role(node) == "label" and rx.search(text_of(node)))):
            continue
        if visible and not shown(node):
            continue
        found.append(node)
    return found


def wait_for(predicate, timeout, what):
    end = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except Exception:
            value = None
        if value:
            return value
        if time.monotonic() > end:
            raise Failure(f"timed out after {timeout} s waiting for {what}")
        # Not faster: every look walks the tree, and GTK 4.8 answers
        # fewer questions about widgets that are going away that way.
        time.sleep(0.25)


def find(roles, pattern, timeout=10, root=None):
    return wait_for(lambda: (find_all(roles, pattern, root) or [None])[0], timeout,
                    f"{'/'.join(roles) or 'any'} {pattern!r}")


BUTTON = ["push button", "toggle button"]
SWITCH = ["switch", "check box", "toggle button"]
LABEL = ["label"]


def act(node, names=("click", "toggle", "activate", "press")):
    for i in range(node.get_n_actions()):
        if node.get_action_name(i) in names:
            done = node.do_action(i)
            if not done:
                states = node.get_state_set()
                log(f"{role(node)} {name(node)!r}: {node.get_action_name(i)} answered {done} "
                    f"(sensitive={states.contains(Atspi.StateType.SENSITIVE)}, "
                    f"showing={states.contains(Atspi.StateType.SHOWING)})")
            return
    raise Failure(f"{role(node)} {name(node)!r} has no action among {names}")


def press(pattern, timeout=10, root=None):
    button = find(BUTTON, pattern, timeout, root)
    log("press", repr(name(button)))
    act(button)


def sees(pattern, timeout=10):
    node = find(LABEL, pattern, timeout)
    log("sees", repr(text_of(node) or name(node)))
    return node


def checked(node):
    return node.get_state_set().contains(Atspi.StateType.CHECKED)


def dialogs(pattern=""):
    app = find_app()
    rx = re.compile(pattern)
    out = []
    for i in range(app.get_child_count()):
        child = app.get_child_at_index(i)
        if child is None:
            continue
        if role(child) in ("dialog", "frame", "window", "alert") and shown(child) and rx.search(name(child)):
            out.append(child)
    return out


def dump(path):
    with open(path, "w") as f:
        for node in walk(find_app()):
            depth = 0
            p = node
            while p is not None and depth < 80:
                try:
                    p = p.get_parent()
                except Exception:
                    break
                depth += 1
            acts = []
            try:
                acts = [node.get_action_name(i) for i in range(node.get_n_actions())]
            except Exception:
                pass
            f.write(f"{'  ' * depth}{role(node)} {name(node)!r} {text_of(node)!r} "
                    f"shown={shown(node)} actions={acts}\n")


# --- the sandbox -------------------------------------------------------------------

def host(path):
    return os.path.join(ARGS.root, path.lstrip("/"))


def read(path):
    with open(path) as f:
        return f.read()


def immutable(path):
    out = subprocess.run(["lsattr", "-d", host(path)], capture_output=True, text=True, check=True)
    return "i" in out.stdout.split()[0]


def almost(*args):
    return subprocess.run([ARGS.almost, "--root", ARGS.root, *args],
                          capture_output=True, text=True)


def screenshot(label):
    path = os.path.join(ARGS.results, f"{label}.png")
    subprocess.run(["import", "-window", "root", path], check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log("screenshot", path)


def window_shot(title_pattern, path, timeout=10):
    """A PNG of one window (not the whole screen): found by its title in
    the X window tree, taken with import -window."""
    rx = re.compile(title_pattern)

    def find_window():
        out = subprocess.run(["xwininfo", "-root", "-tree"], capture_output=True,
                             text=True).stdout
        for line in out.splitlines():
            m = re.match(r'\s*(0x[0-9a-f]+) "(.*)": \(.*\)\s+(\d+)x(\d+)\+', line)
            if m and rx.search(m.group(2)) and int(m.group(3)) > 200 and int(m.group(4)) > 200:
                return m.group(1)
        return None

    window = wait_for(find_window, timeout, f"the X window {title_pattern!r}")
    time.sleep(0.5)  # let it finish drawing
    subprocess.run(["import", "-window", window, path], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log("window screenshot", path)


# --- scenarios -----------------------------------------------------------------------

def open_layers():
    r = almost("--json", "layer", "list")
    assert r.returncode == 0, r.stderr
    return len(json.loads(r.stdout.strip().splitlines()[-1])["layers"])


def scenario_startup():
    sees(r"^System files are protected$", 20)
    # The headline does not promise what open layers leave unprotected,
    # and a banner names them.
    n = open_layers()
    assert n > 0, "the sandbox starts with open layers"
    sees(rf"not even as administrator, except beneath the {n} open layers\.$", 5)
    sees(rf"^{n} layers are open$", 5)
    sees(r"^The files beneath them are not protected until their changes are applied or discarded\.$", 5)
    find(SWITCH, r"Protect System Files")
    find(LABEL, r"Layers")
    # "Add Layer…" asks what for: a software change first, or a folder;
    # the folder opens the chooser (Cancel closes it).
    # (GTK 4.8 names the chooser's window with no role the driver's
    # dialogs() knows: its Select and Cancel buttons are what is looked for.)
    press(r"^Add a layer$", 5)
    ask = wait_for(lambda: (dialogs(r"^Add a Layer$") or [None])[0], 10, "the question")
    find(BUTTON, r"^Try a Software Change$", 5, ask)
    press(r"^Choose a Folder…$", 5, ask)
    find(BUTTON, r"^_?Select( Select)?$", 10)
    press(r"^_?Cancel( Cancel)?$", 5)
    wait_for(lambda: not find_all(BUTTON, r"^_?Select( Select)?$"), 10, "the chooser to close")
    check_names("the window")
    dump(os.path.join(ARGS.results, "startup-tree.txt"))
    window_shot(r"^Almost", os.path.join(ARGS.results, "window-panel.png"))


def protection_switch():
    """The switch, once it shows the sandbox protected (checked with lsattr)."""
    switch = find(SWITCH, r"Protect System Files", 20)
    wait_for(lambda: checked(switch), 10, "the switch to show protected")
    assert immutable("/usr/include/fake.h"), "the sandbox should start locked"
    return switch


def toggle_protection(switch, on):
    """Turns protection on or off with the switch; waits for lsattr, the
    switch and the headline to agree."""
    log(f"toggle the switch {'on' if on else 'off'}")
    act(switch)
    wait_for(lambda: immutable("/usr/include/fake.h") == on, 30,
             f"lsattr to show the flag {'set' if on else 'cleared'}")
    wait_for(lambda: checked(switch) == on, 10,
             f"the switch to show {'protected' if on else 'unprotected'}")
    sees(r"^System files are protected$" if on else r"^System files are unprotected$", 10)


@contextlib.contextmanager
def atspi_events(kinds):
    """Collects the AT-SPI events of KINDS (e.g. "object:text-changed")
    that the panel sends while the block runs, as an assistive technology
    receives them: a list of (type, role, name, detail) filled by pump()."""
    got = []

    def on_event(event):
        try:
            source = event.source
            got.append((event.type, role(source), name(source), str(event.any_data)))
        except Exception as e:  # noqa: BLE001 - a vanished source
            got.append((event.type, "?", "?", str(e)))

    listener = Atspi.EventListener.new(on_event)
    for kind in kinds:
        listener.register(kind)
    try:
        yield got
    finally:
        for kind in kinds:
            listener.deregister(kind)


def pump(seconds):
    """Lets AT-SPI deliver events for SECONDS (they come through GLib's
    main loop, which nothing else runs here)."""
    from gi.repository import GLib
    end = time.monotonic() + seconds
    context = GLib.MainContext.default()
    while time.monotonic() < end:
        while context.iteration(False):
            pass
        time.sleep(0.02)


def scenario_announce():
    """What an assistive technology receives when the state changes after
    the switch is flipped (GTK 4.8 has no announce API and no live
    regions): the headline label's name-changed event, and a
    description-changed event on the switch itself (the focused widget,
    whose description a screen reader reads out) carrying the new
    headline. Checked by listening to the AT-SPI events as Orca does."""
    switch = protection_switch()
    kinds = ["object:property-change:accessible-name",
             "object:property-change:accessible-description"]

    def said(got, kind, source_role, text):
        return any(e[0] == kind and e[1] == source_role and e[3] == text for e in got)

    for on, headline in ((False, "System files are unprotected"),
                         (True, "System files are protected")):
        with atspi_events(kinds) as got:
            pump(0.3)
            got.clear()
            act(switch)
            wait_for(lambda: immutable("/usr/include/fake.h") == on, 30, "the act")
            end = time.monotonic() + 10
            while time.monotonic() < end and not (
                    said(got, kinds[1], "check box", headline)
                    and said(got, kinds[0], "label", headline)):
                pump(0.25)
            for e in got:
                if headline in e[3]:
                    log("event", e)
            assert said(got, kinds[0], "label", headline), \
                f"no name-changed event of the headline {headline!r}"
            assert said(got, kinds[1], "check box", headline), \
                f"no description-changed event of the switch with {headline!r}"
        sees(rf"^{headline}$", 5)


def scenario_software_change():
    """"Add Layer…" › "Try a Software Change" makes a system layer (almost
    layer new --system): its row is titled "Software Change" and names the
    directories it covers; a file written into /etc shows in its review
    under an "/etc · Added" heading; "Discard Layer…" in the review, once
    confirmed, discards it. The other layers are discarded first (from a
    terminal): a system layer covers /usr, which they lie in."""
    for layer in layer_list():
        r = almost("--json", "layer", "discard", "--yes", layer["id"])
        if r.returncode == 8:
            # Held by the sandbox's sleep (run.sh's holder, when busy_error
            # has not committed that layer): end what the error names.
            error = json.loads(r.stdout.strip().splitlines()[-1])
            for p in error.get("processes", []):
                log("ending", p)
                os.kill(p["pid"], signal.SIGTERM)
            time.sleep(0.5)
            r = almost("layer", "discard", "--yes", layer["id"])
        assert r.returncode == 0, (layer, r.stdout, r.stderr)
    wait_for(lambda: not find_all(BUTTON, r"^Review the layer over "), 15, "no layer rows")
    press(r"^Add a layer$", 5)
    ask = wait_for(lambda: (dialogs(r"^Add a Layer$") or [None])[0], 10, "the question")
    press(r"^Try a Software Change$", 5, ask)
    sees(r"^Software Change$", 30)
    system = [layer for layer in layer_list() if layer.get("system")]
    assert len(system) == 1, layer_list()
    parts = system[0]["paths"]
    assert "/usr" in parts and "/etc" in parts, parts
    sees(r"^Covers /usr, ", 5)
    with open(host("/etc/try-me.conf"), "w") as f:
        f.write("tried = yes\n")
    check_names("the window with a software change")
    press(r"^Review the layer over /usr, ", 10)
    review = review_dialog()
    sees(r"^/etc · Added \(1\)$", 20)
    find(["list item"], r"^Added: /etc/try-me\.conf$", 5, review)
    screenshot("software-change-review")
    press(r"^Discard Layer…$", 5, review)
    confirm = wait_for(lambda: (dialogs(r"Discard") or [None])[0], 10, "the confirmation")
    press(r"^Discard$", 5, confirm)
    wait_for(lambda: not dialogs(r"Review Changes"), 30, "the review to close")
    wait_for(lambda: not any(layer.get("system") for layer in layer_list()), 30,
             "the system layer to go")
    assert not os.path.exists(host("/etc/try-me.conf")), "the discarded file stayed"


TYPE_NAME = re.compile(r"^(Gtk|Adw)[A-Z]\w*$")


def doubled(text):
    """Whether a name ends with its last words said twice ("Commit
    Commit", "Turn back on: At Restart At Restart"), mnemonics aside."""
    words = text.replace("_", "").split()
    return any(words[-2 * k:-k] == words[-k:] for k in range(1, len(words) // 2 + 1))


def check_names(where):
    """Every shown widget that takes the focus has a name of its own (not
    empty, not GTK's type name), said once."""
    bad, count = [], 0
    for node in walk(find_app()):
        try:
            focusable = node.get_state_set().contains(Atspi.StateType.FOCUSABLE)
        except Exception:
            continue
        if not focusable or not shown(node):
            continue
        count += 1
        n = name(node)
        if not n.strip() or TYPE_NAME.match(n) or doubled(n):
            bad.append(f"{role(node)} {n!r}")
    log(f"{where}: {count} focusable widgets, each named once" if not bad else
        f"{where}: badly named: {bad}")
    if bad:
        raise Failure(f"{where}: focusable widgets without a name of their own, or "
                      f"named twice: {'; '.join(bad)}")
    assert count > 3, f"{where}: only {count} focusable widgets found"


def scenario_protection():
    switch = protection_switch()
    toggle_protection(switch, False)
    sees(r"^Protection turned off$", 5)
    screenshot("protection-off")
    toggle_protection(switch, True)
    # The new toast replaces the old one at once instead of queueing
    # behind it until it times out.
    sees(r"^Protection turned on$", 2)
    assert not find_all(LABEL, r"^Protection turned off$"), "the unlock's toast is still shown"


def scenario_outside():
    switch = find(SWITCH, r"Protect System Files", 20)
    wait_for(lambda: checked(switch), 10, "the switch to show protected")
    log("unlock from a terminal")
    r = almost("unlock", "--yes")
    assert r.returncode == 0, r.stderr
    wait_for(lambda: not checked(switch), 8, "the switch to follow the terminal")
    sees(r"^System files are unprotected$", 2)
    log("lock from a terminal")
    r = almost("lock")
    assert r.returncode == 0, r.stderr
    wait_for(lambda: checked(switch), 8, "the switch to follow the terminal")
    sees(r"^System files are protected$", 2)
    log("a new layer made in a terminal shows up")
    r = almost("layer", "new", "/usr/include")
    assert r.returncode == 0, r.stderr
    find(BUTTON, r"Review the layer over /usr/include$", 8)
    # Its review says there is nothing to apply (a status page, not two
    # empty panes), and Esc closes it.
    press(r"Review the layer over /usr/include$", 5)
    review_dialog()
    sees(r"^Nothing to Apply$", 20)
    key("Escape")
    wait_for(lambda: not dialogs(r"Review Changes"), 10, "Esc to close the review")
    r = almost("layer", "discard", "--yes", r.stdout.strip().splitlines()[-1])
    assert r.returncode == 0, r.stderr
    wait_for(lambda: not find_all(BUTTON, r"Review the layer over /usr/include$"), 8,
             "the discarded layer to go")
    # A flag cleared by hand, not through almost, leaves no mark the panel
    # watches: its timed read (every 20 s while the marks are watched) must
    # find it. chattr on the sandbox's own file, named through host().
    log("clear one flag by hand with chattr")
    r = subprocess.run(["chattr", "-i", host("/usr/include/fake.h")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert not immutable("/usr/include/fake.h")
    sees(r"^Some system files can be changed$", 30)
    sees(r"^System files are partly protected$", 2)
    assert not checked(switch), "the switch should not claim protection of a partly locked tree"
    # Partly protected has its own row, which names how many files are not
    # protected and protects them.
    sees(r"^1 file isn't protected$", 5)
    screenshot("partial-row")
    press(r"^Protect All( Protect All)?$", 5)
    wait_for(lambda: immutable("/usr/include/fake.h"), 30, "Protect All to set the flag again")
    wait_for(lambda: checked(switch), 8, "the switch to show protected")
    sees(r"^System files are protected$", 5)
    wait_for(lambda: not find_all(LABEL, r"isn't protected$"), 5, "the partial row to go")


KEYS = {"Tab": 0xFF09, "Down": 0xFF54, "Up": 0xFF52, "Return": 0xFF0D, "space": 0x20,
        "Escape": 0xFF1B}


def key(name):
    Atspi.generate_keyboard_event(KEYS[name], None, Atspi.KeySynthType.SYM)
    time.sleep(0.05)


def focused(node):
    return node.get_state_set().contains(Atspi.StateType.FOCUSED)


def focus_by_tab(node, limit=40):
    """Keyboard focus cannot be asked for through AT-SPI here: Tab to it."""
    for _ in range(limit):
        if focused(node):
            return
        key("Tab")
        time.sleep(0.1)
    raise Failure(f"Tab never reached {name(node)!r}")


def config_text():
    return read(host("/etc/almost/almost.toml"))


RADIO = ["radio button", "check box", "toggle button"]


def startup_radio(title, timeout=10):
    # Names come doubled ("Mode at startup: Protected Protected").
    return find(RADIO, rf"^Mode at startup: {title}( {title})?$", timeout)


def pick_radio(radios, target):
    """GTK 4.8 exposes no action on a check button: pick a radio row the
    way a keyboard user does. Tab to the checked button, the arrow keys
    move through the rows, space picks."""
    checked_one = next((r for r in radios if checked(r)), radios[0])
    focus_by_tab(checked_one)
    here = radios.index(checked_one)
    there = radios.index(target)
    for _ in range(abs(there - here)):
        key("Down" if there > here else "Up")
        time.sleep(0.1)
    # The arrows of the list move the focus to the row (or its button);
    # space activates the row, whose activatable widget is the button.
    row = target
    while row is not None and role(row) != "list item":
        row = row.get_parent()
    wait_for(lambda: focused(target) or (row is not None and focused(row)), 5,
             f"the focus on {name(target)!r}")
    if not checked(target):
        key("space")


def scenario_startup_mode():
    wait_for(lambda: 'default_mode = "locked"' in config_text(), 2, "the initial config")
    protected = startup_radio("Protected", 20)
    unprotected = startup_radio("Unprotected")
    as_it_was = startup_radio("As it was")
    radios = [protected, unprotected, as_it_was]
    wait_for(lambda: checked(protected) and not checked(unprotected), 10,
             "the radio rows to show Protected")
    log("pick the Unprotected radio row (keyboard)")
    pick_radio(radios, unprotected)
    wait_for(lambda: 'default_mode = "unlocked"' in config_text(), 15,
             "default_mode = unlocked in the config file")
    wait_for(lambda: checked(unprotected) and not checked(protected), 10,
             "the radio rows to show Unprotected")
    screenshot("startup-mode-unprotected")
    log("config now:", config_text().strip().splitlines()[1])
    log("and back to Protected")
    pick_radio(radios, protected)
    wait_for(lambda: 'default_mode = "locked"' in config_text(), 15,
             "default_mode = locked in the config file")
    wait_for(lambda: checked(protected) and not checked(unprotected), 10,
             "the radio rows to show Protected again")
    assert "# Mode applied at boot" in config_text(), "the comment of the file is kept"


def review_dialog():
    return wait_for(lambda: (dialogs(r"Review Changes") or [None])[0], 10, "the review dialog")


def select_row(row):
    try:
        act(row, ("activate", "select", "click"))
        return
    except Failure:
        pass
    parent = row.get_parent()
    Atspi.Selection.select_child(parent, row.get_index_in_parent())


def scenario_review_commit():
    press(r"Review the layer over /usr/share", 20)
    dialog = review_dialog()
    sees(r"^Apply 3 changes to /usr/share$", 20)
    for kind, path in (("Added", "added.txt"), ("Modified", "modify.txt"), ("Deleted", "deleteme.txt")):
        find(["list item"], rf"^{kind}: /usr/share/doc/{path}", 5, dialog)
        log("listed:", kind, path)
    text = find(["text"], r"Difference of the selected file", 5, dialog)
    # Each row names the file, its folder beneath.
    find(LABEL, r"^modify\.txt$", 5, dialog)
    find(LABEL, r"^/usr/share/doc$", 5, dialog)
    # The search entry takes text. Which rows it hides cannot be read
    # here (GTK 4.8 keeps a filtered row's extents and states): its
    # predicate has a unit test, and the screenshot shows the list.
    search = find(["text", "entry"], r"^Search the changes", 5, dialog)
    type_into(search, "modi")
    time.sleep(0.5)
    window_shot(r"^Review Changes", os.path.join(ARGS.results, "window-review-search.png"))
    type_into(search, "")
    select_row(find(["list item"], r"^Modified: /usr/share/doc/modify.txt", 5, dialog))
    wait_for(lambda: "+TWO" in text_of(text) and "-two" in text_of(text), 10,
             "the text diff of modify.txt")
    log("diff shown:", text_of(text).replace("\n", " | "))
    check_names("the review")
    # No diff syntax: no file headers, the hunk header reads "Line 1".
    shown_diff = text_of(text)
    for raw in ("--- a/", "+++ b/", "@@"):
        assert raw not in shown_diff, f"{raw!r} in the diff: {shown_diff!r}"
    assert "\nLine 1\n" in shown_diff, shown_diff
    # A new text file shows its content, not only its size.
    select_row(find(["list item"], r"^Added: /usr/share/doc/added.txt", 5, dialog))
    wait_for(lambda: "hello from the layer" in text_of(text), 10, "the content of added.txt")
    assert "+hello" not in text_of(text) and "bytes" not in text_of(text), text_of(text)
    select_row(find(["list item"], r"^Modified: /usr/share/doc/modify.txt", 5, dialog))
    wait_for(lambda: "+TWO" in text_of(text), 10, "the diff of modify.txt again")
    screenshot("review-dialog")
    window_shot(r"^Review Changes", os.path.join(ARGS.results, "window-review.png"))
    check_diff_contrast(os.path.join(ARGS.results, "window-review.png"), "light")
    press(r"^_?Apply Changes( Apply Changes)?$", 5, dialog)
    wait_for(lambda: not find_all(BUTTON, r"Review the layer over /usr/share$"), 30,
             "the layer row to go")
    wait_for(lambda: os.path.exists(host("/usr/share/doc/added.txt")), 5, "added.txt in the tree")
    with open(host("/usr/share/doc/added.txt")) as f:
        assert f.read() == "hello from the layer\n"
    with open(host("/usr/share/doc/modify.txt")) as f:
        assert f.read() == "one\nTWO\nthree\nfour\nfive\n"
    assert not os.path.exists(host("/usr/share/doc/deleteme.txt")), "deleteme.txt is deleted"
    assert immutable("/usr/share/doc/added.txt"), "the committed tree is protected again"
    find(BUTTON, r"Undo the last applied changes", 10)
    log("the tree has the three changes, protected again; Undo is offered")
    # The commit's toast offers Undo too, through the same confirmation
    # (cancelled here: the undo scenario undoes it from a fresh window).
    sees(r"^3 changes applied to /usr/share$", 5)
    press(r"^Undo( Undo)?$", 5)
    confirm = wait_for(lambda: (dialogs(r"Undo") or [None])[0], 10, "the confirmation")
    press(r"^_?Cancel( Cancel)?$", 5, confirm)
    wait_for(lambda: not dialogs(r"Undo"), 10, "the confirmation to close")
    assert os.path.exists(host("/usr/share/doc/added.txt")), "a cancelled undo changed nothing"


def row_of(node):
    """The list item (a layer's row) that holds NODE."""
    while node is not None and role(node) != "list item":
        node = node.get_parent()
    return node


@contextlib.contextmanager
def lower_tree():
    """The sandbox's own tree without the layers mounted over it: a plain
    (not recursive) bind mount of the root, in run.sh's private mount
    namespace, unmounted afterwards."""
    where = tempfile.mkdtemp(prefix="lower.", dir=ARGS.results)
    subprocess.run(["mount", "--bind", ARGS.root, where], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", where], check=True)
        os.rmdir(where)


def scenario_review_select():
    """A selective commit from the review: a layer over /usr/include with
    3 changes made by the real almost; the check of one is turned off,
    the button says "Apply 2 of 3 Changes", and applying it puts the two
    in the tree and leaves the third in the layer: its row stays, with 1
    change, and `almost layer diff` lists exactly that one. The layer is
    discarded at the end."""
    r = almost("layer", "new", "/usr/include")
    assert r.returncode == 0, r.stderr
    layer = r.stdout.strip().splitlines()[-1]
    try:
        with open(host("/usr/include/sel-one.h"), "w") as f:
            f.write("int one;\n")
        with open(host("/usr/include/sel-two.h"), "w") as f:
            f.write("int two;\n")
        with open(host("/usr/include/fake.h"), "w") as f:
            f.write("int fake2;\n")
        press(r"Review the layer over /usr/include$", 20)
        dialog = review_dialog()
        sees(r"^Apply 3 changes to /usr/include$", 20)
        # Every change has its check, all on at first, named by its file.
        checks = {p: find(["check box"], rf"^Include /usr/include/{re.escape(p)}$", 5, dialog)
                  for p in ("sel-one.h", "sel-two.h", "fake.h")}
        assert all(checked(c) for c in checks.values()), "a check is off at first"
        find(BUTTON, r"^_?Apply Changes( Apply Changes)?$", 5, dialog)
        # GTK 4.8 exposes no action on a check button: its row chosen,
        # Tab reaches its check (Tab enters the list at the chosen row),
        # space turns it off, as a keyboard user does.
        select_row(row_of(checks["sel-two.h"]))
        focus_by_tab(checks["sel-two.h"])
        log("space on", repr(name(checks["sel-two.h"])))
        key("space")
        wait_for(lambda: not checked(checks["sel-two.h"]), 5, "the check to turn off")
        apply = find(BUTTON, r"^_?Apply 2 of 3 Changes( Apply 2 of 3 Changes)?$", 5, dialog)
        check_names("the review with a change left out")
        window_shot(r"^Review Changes", os.path.join(ARGS.results, "window-review-select.png"))
        log("press", repr(name(apply)))
        act(apply)
        wait_for(lambda: not dialogs(r"Review Changes"), 30, "the review to close")
        # On disk (beneath the layer, still mounted): the two, not the third.
        with lower_tree() as lower:
            inc = os.path.join(lower, "usr/include")
            assert read(os.path.join(inc, "sel-one.h")) == "int one;\n"
            assert read(os.path.join(inc, "fake.h")) == "int fake2;\n"
            assert not os.path.exists(os.path.join(inc, "sel-two.h")), \
                "the unchecked change was applied"
        log("the tree has the two checked changes, not the third")
        # The toast says what stays in the layer.
        sees(r"^2 changes applied to /usr/include\. 1 change stays in the layer$", 10)
        # The layer stays with the rest: its row, with 1 change.
        button = find(BUTTON, r"Review the layer over /usr/include$", 10)
        row = row_of(button)
        assert row is not None, "no row holds the layer's button"
        find(LABEL, r"(^|· )1 change( ·|$)", 15, row)
        r = almost("--json", "layer", "diff", layer)
        assert r.returncode == 0, r.stderr
        changes = json.loads(r.stdout.strip().splitlines()[-1])["changes"]
        assert [c["path"] for c in changes] == ["/usr/include/sel-two.h"], changes
        assert host("/usr/include/sel-two.h") and read(host("/usr/include/sel-two.h")) == "int two;\n"
        log("the layer holds exactly the third, still mounted")
    finally:
        r = almost("layer", "discard", "--yes", layer)
        log("discard", layer, r.returncode, r.stderr.strip())
    wait_for(lambda: not find_all(BUTTON, r"Review the layer over /usr/include$"), 15,
             "the layer row to go")
    assert not os.path.exists(host("/usr/include/sel-two.h")), "the discarded change stayed"
    # The selective commit undone (its id is the layer's, or that with a
    # suffix):
    # the undo scenario after this one undoes review_commit's, the last.
    r = almost("--json", "layer", "history")
    assert r.returncode == 0, r.stderr
    newest = json.loads(r.stdout.strip().splitlines()[-1])["commits"][0]["id"]
    assert newest.startswith(layer), (newest, layer)
    r = almost("layer", "undo", "--yes", newest)
    assert r.returncode == 0, r.stderr
    assert not os.path.exists(host("/usr/include/sel-one.h")), "the undo left sel-one.h"
    assert read(host("/usr/include/fake.h")) == "int fake;\n", "the undo left fake.h changed"
    log("the selective commit undone", newest)


def scenario_review_folder():
    """A folder's check covers the changes below it: in a layer over
    /usr/share/doc (after review_commit applied the layer over /usr/share),
    a folder whose mode changed and a new file in it; turning the
    folder's check off turns the file's off too, and with nothing left
    the button says "Apply 0 of 2 Changes" and cannot be pressed. Nothing
    is applied: the layer is discarded."""
    r = almost("layer", "new", "/usr/share/doc")
    assert r.returncode == 0, f"needs review_commit first: {r.stderr}"
    layer = r.stdout.strip().splitlines()[-1]
    try:
        os.chmod(host("/usr/share/doc/fake"), 0o700)
        with open(host("/usr/share/doc/fake/new-page.txt"), "w") as f:
            f.write("new page\n")
        press(r"Review the layer over /usr/share/doc$", 20)
        dialog = review_dialog()
        sees(r"^Apply 2 changes to /usr/share/doc$", 20)
        folder = find(["check box"], r"^Include /usr/share/doc/fake$", 5, dialog)
        page = find(["check box"], r"^Include /usr/share/doc/fake/new-page\.txt$", 5, dialog)
        assert checked(folder) and checked(page), "a check is off at first"
        select_row(row_of(folder))
        focus_by_tab(folder)
        key("space")
        wait_for(lambda: not checked(folder), 5, "the folder's check to turn off")
        wait_for(lambda: not checked(page), 5, "the check of the file in it to follow")
        button = find(BUTTON, r"^_?Apply 0 of 2 Changes", 5, dialog)
        assert not button.get_state_set().contains(Atspi.StateType.SENSITIVE), \
            "Apply 0 of 2 Changes can be pressed"
        log("the folder's check took the file's with it; nothing to apply")
        press(r"^_?Cancel( Cancel)?$", 5, dialog)
        wait_for(lambda: not dialogs(r"Review Changes"), 10, "the review to close")
    finally:
        r = almost("layer", "discard", "--yes", layer)
        log("discard", layer, r.returncode, r.stderr.strip())
    assert not os.path.exists(host("/usr/share/doc/fake/new-page.txt")), "the discarded file stayed"


def scenario_review_content():
    """What the review lists of folders, and what it shows of new files,
    in a layer over /usr/include made here: a new folder holding a new
    file is listed by its file only; a new empty folder is listed and
    says so; the new text file shows its lines (no "+", no "@@"); a new
    binary file its size; a file made setuid says so in plain words, then
    its permissions as letters (not almost's "mode 0644 → 4755"). The
    layer is discarded at the end."""
    r = almost("layer", "new", "/usr/include")
    assert r.returncode == 0, r.stderr
    layer = r.stdout.strip().splitlines()[-1]
    try:
        os.makedirs(host("/usr/include/newdir"))
        with open(host("/usr/include/newdir/new.h"), "w") as f:
            f.write("#pragma once\nint answer(void);\n")
        os.makedirs(host("/usr/include/emptydir"))
        with open(host("/usr/include/blob.bin"), "wb") as f:
            f.write(b"\x00\x01\x02\x03")
        # A change of permissions only: made setuid, which the review
        # must say in plain words before the letters.
        os.chmod(host("/usr/include/fake.h"), 0o4755)
        press(r"Review the layer over /usr/include$", 20)
        dialog = review_dialog()
        sees(r"^Apply 4 changes to /usr/include$", 20)
        find(["list item"], r"^Added: /usr/include/newdir/new\.h$", 5, dialog)
        assert not find_all(["list item"], r"^Added: /usr/include/newdir$", dialog), \
            "the folder of new.h is listed as a change"
        text = find(["text"], r"Difference of the selected file", 5, dialog)
        select_row(find(["list item"], r"^Added: /usr/include/newdir/new\.h$", 5, dialog))
        wait_for(lambda: "int answer(void);" in text_of(text), 10, "the content of new.h")
        assert "+int" not in text_of(text) and "@@" not in text_of(text), text_of(text)
        screenshot("review-new-file")
        select_row(find(["list item"], r"^Added: /usr/include/emptydir$", 5, dialog))
        wait_for(lambda: "A new, empty folder." in text_of(text), 10, "the empty folder's words")
        select_row(find(["list item"], r"^Added: /usr/include/blob\.bin$", 5, dialog))
        wait_for(lambda: "A new file of 4 bytes." in text_of(text), 10, "the binary's size")
        select_row(find(["list item"], r"^Modified: /usr/include/fake\.h$", 5, dialog))
        wait_for(lambda: "It now runs with the rights of its owner or group" in text_of(text),
                 10, "the setuid change in words")
        said = text_of(text)
        assert "Permissions change from rw-r--r-- to rwsr-xr-x." in said, said
        assert "mode 0644" not in said, f"almost's English words shown: {said}"
        press(r"^_?Cancel( Cancel)?$", 5, dialog)
        wait_for(lambda: not dialogs(r"Review Changes"), 10, "the review to close")
    finally:
        r = almost("layer", "discard", "--yes", layer)
        assert r.returncode == 0, r.stderr
    wait_for(lambda: not find_all(BUTTON, r"Review the layer over /usr/include$"), 10,
             "the discarded layer to go")


def type_into(node, text):
    """Replaces the text of an entry through AT-SPI's editable text."""
    if not Atspi.EditableText.set_text_contents(node, text):
        raise Failure(f"{role(node)} {name(node)!r} took no text")
    log(f"typed {text!r} into {name(node)!r}")


def ppm(path):
    """The pixels of a PNG: (width, height, rows of (r, g, b))."""
    out = subprocess.run(["convert", path, "-depth", "8", "ppm:-"], capture_output=True,
                         check=True).stdout
    magic, size, depth, data = out.split(b"\n", 3)
    assert magic == b"P6" and depth == b"255", (magic, depth)
    w, h = map(int, size.split())
    return w, h, [[tuple(data[(y * w + x) * 3:(y * w + x) * 3 + 3]) for x in range(w)]
                  for y in range(h)]


def contrast(a, b):
    def lum(c):
        def lin(v):
            v /= 255
            return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4
        r, g, b_ = (lin(v) for v in c)
        return 0.2126 * r + 0.7152 * g + 0.0722 * b_
    x, y = lum(a), lum(b)
    return (max(x, y) + 0.05) / (min(x, y) + 0.05)


def tinted_bands(path):
    """The diff's coloured lines as rendered: each run of pixel rows whose
    most common colour is a tint (not white, black or grey) covering a
    third of the row at least, with the highest contrast of any pixel of
    the run against that tint (the glyphs' full colour)."""
    w, _, rows = ppm(path)
    bands = []
    for y, row in enumerate(rows):
        counts = {}
        for c in row:
            counts[c] = counts.get(c, 0) + 1
        bg, n = max(counts.items(), key=lambda kv: kv[1])
        if n < w / 3 or max(bg) - min(bg) < 8:
            continue
        # Only where the tint is (the text view), not the list beside it.
        first = row.index(bg)
        last = w - 1 - row[::-1].index(bg)
        best = max(contrast(c, bg) for c in row[first:last + 1])
        if bands and bands[-1][0] == bg and bands[-1][2] == y - 1:
            bands[-1] = (bg, max(bands[-1][1], best), y)
        else:
            bands.append((bg, best, y))
    return [(bg, ratio) for bg, ratio, _ in bands]


def check_diff_contrast(path, label):
    """WCAG AA (4.5:1) for the added and removed lines of the diff of
    modify.txt (-two, +TWO, +five: three tinted lines, two colours), read
    off the rendered window."""
    bands = tinted_bands(path)
    log(f"{label}: tinted lines {[(bg, round(r, 2)) for bg, r in bands]}")
    assert len(bands) >= 3 and len({bg for bg, _ in bands}) >= 2, f"{label}: {bands}"
    weak = [(bg, round(r, 2)) for bg, r in bands if r < 4.5]
    assert not weak, f"{label}: below 4.5:1: {weak}"


def scenario_dark_diff():
    """The diff in the dark style (libadwaita's ADW_DEBUG_COLOR_SCHEME):
    its colours read at 4.5:1 at least, as review_commit checks them in
    the light one."""
    stop_panel()
    try:
        start_panel({"ADW_DEBUG_COLOR_SCHEME": "prefer-dark"})
        press(r"Review the layer over /usr/share", 20)
        dialog = review_dialog()
        sees(r"^Apply 3 changes to /usr/share$", 20)
        text = find(["text"], r"Difference of the selected file", 5, dialog)
        select_row(find(["list item"], r"^Modified: /usr/share/doc/modify.txt", 5, dialog))
        wait_for(lambda: "+TWO" in text_of(text), 10, "the text diff of modify.txt")
        shot = os.path.join(ARGS.results, "window-review-dark.png")
        window_shot(r"^Review Changes", shot)
        check_diff_contrast(shot, "dark")
        press(r"^_?Cancel( Cancel)?$", 5, dialog)
    finally:
        stop_panel()
        start_panel()


def scenario_undo():
    """Undo is offered whenever the status has a commit to undo, also in a
    window that did not make it: a fresh panel offers it, and it puts the
    tree back as it was before review_commit."""
    if not os.path.exists(host("/usr/share/doc/added.txt")):
        raise Failure("needs review_commit first")
    stop_panel()
    start_panel()
    press(r"^Undo the last applied changes", 20)
    dialog = wait_for(lambda: (dialogs(r"Undo") or [None])[0], 10, "the confirmation")
    press(r"^_?Undo( Undo)?$", 5, dialog)
    wait_for(lambda: not os.path.exists(host("/usr/share/doc/added.txt")), 30,
             "added.txt to go")
    with open(host("/usr/share/doc/modify.txt")) as f:
        assert f.read() == "one\ntwo\nthree\nfour\n", "modify.txt is back"
    assert os.path.exists(host("/usr/share/doc/deleteme.txt")), "deleteme.txt is back"
    wait_for(lambda: not find_all(BUTTON, r"^Undo the last applied changes"), 10, "Undo to go")
    log("the tree is as before the commit; Undo is no longer offered")


def scenario_discard():
    press(r"Discard the layer over /usr/lib", 20)
    dialog = wait_for(lambda: (dialogs(r"Discard") or [None])[0], 10, "the confirmation")
    # The heading asks, the body names the path and the count.
    sees(r"^Discard the Layer\?$", 5)
    sees(r"^Its 1 change is deleted\. The files in /usr/lib stay as they are\.$", 5)
    screenshot("discard-confirm")
    press(r"^_?Discard( Discard)?$", 5, dialog)
    wait_for(lambda: not find_all(BUTTON, r"Discard the layer over /usr/lib$"), 30,
             "the layer row to go")
    assert not os.path.exists(host("/usr/lib/fake/discarded.so")), "nothing of the layer landed"
    assert os.path.exists(host("/usr/lib/fake/lib1.so"))
    wait_for(lambda: immutable("/usr/lib/fake/lib1.so"), 10, "the covered tree protected again")
    out = almost("layer", "list")
    assert "/usr/lib " not in out.stdout, out.stdout


def close_error(heading, says, shot, timeout=30):
    """Waits for the error dialog titled HEADING, checks that the window
    says SAYS, saves a screenshot and closes the dialog."""
    error = wait_for(lambda: (dialogs(heading) or [None])[0], timeout,
                     f"the error dialog {heading!r}")
    sees(says, 5)
    screenshot(shot)
    press(r"^_?Close( Close)?$", 5, error)


def expand(pattern, root=None, timeout=5):
    """Opens the expander (or expander row) named PATTERN: presses the
    first node of that name that has an action."""
    wanted = ("click", "activate", "toggle", "press")

    def target():
        for node in find_all([], pattern, root):
            try:
                if any(node.get_action_name(i) in wanted for i in range(node.get_n_actions())):
                    return node
            except Exception:
                continue
        return None

    node = wait_for(target, timeout, f"an expander {pattern!r}")
    log("expand", role(node), repr(name(node)))
    act(node, wanted)
    return node


FR = {"LANGUAGE": "fr", "LANG": "C.UTF-8"}


def scenario_busy_error():
    """The commit of the layer over /usr/bin, which a process (sleep, its
    cwd there) holds, in French: the error names the program from the
    error's data in the panel's words ("« sleep » (processus N)"), its
    title says what is wrong, the CLI's English line is only under
    "Détails techniques". After "Fermer" the review is still open: Apply
    again fails the same way; with sleep ended, "Réessayer" commits, and
    only then does the review close."""
    stop_panel()
    start_panel(FR)
    press(r"^Relire la couche sur /usr/bin$", 20)
    review = wait_for(lambda: (dialogs(r"Relire les modifications") or [None])[0], 10,
                      "the review")
    sees(r"^Appliquer 1 modification à /usr/bin$", 20)
    apply = r"^_?Appliquer les modifications( Appliquer les modifications)?$"
    press(apply, 5, review)
    heading = r"^Un programme utilise les fichiers$"
    error = wait_for(lambda: (dialogs(heading) or [None])[0], 30, "the busy error")
    said = sees(r"«\u00a0sleep\u00a0» \(processus \d+\)\. Quittez-le, puis réessayez\.$", 5)
    pid = int(re.search(r"processus (\d+)", text_of(said)).group(1))
    # The CLI's words are not in the dialog until the details are opened.
    english = r"is busy: in use by \d+ \(sleep\)"
    assert not find_all(LABEL, english, error), "the CLI's line shows before the details"
    expand(r"^Détails techniques$", error)
    sees(english, 5)
    check_names("the busy error, in French")
    screenshot("busy-error-fr")
    find(BUTTON, r"^_?Réessayer( Réessayer)?$", 5, error)
    press(r"^_?Fermer( Fermer)?$", 5, error)
    wait_for(lambda: not dialogs(heading), 10, "the error to close")
    # The review stayed open over the failed commit: apply again.
    review = wait_for(lambda: (dialogs(r"Relire les modifications") or [None])[0], 5,
                      "the review, still open")
    sees(r"^Appliquer 1 modification à /usr/bin$", 5)
    press(apply, 10, review)
    error = wait_for(lambda: (dialogs(heading) or [None])[0], 30, "the busy error again")
    # The program ends; Try Again now commits.
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not os.path.exists(f"/proc/{pid}"), 10, "sleep to end")
    press(r"^_?Réessayer( Réessayer)?$", 5, error)
    wait_for(lambda: not dialogs(r"Relire les modifications"), 30, "the review to close")
    assert not dialogs(heading), "a new error after the retry"
    wait_for(lambda: os.path.exists(host("/usr/bin/other")) and not any(
        layer["path"] == "/usr/bin" for layer in layer_list()), 30,
        "the layer over /usr/bin to be committed")
    stop_panel()
    start_panel()


def layer_list():
    r = almost("--json", "layer", "list")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])["layers"]


def scenario_bad_config():
    """A broken configuration found while reading the state (nobody
    asked) is a warning row in the window, not a dialog: its title, the
    advice, and the CLI's line (naming almost.toml) under Technical
    Details. Mended, the row goes."""
    good = config_text()
    try:
        with open(host("/etc/almost/almost.toml"), "w") as f:
            f.write('default_mode = "sometimes"\n')
        sees(r"^The configuration file of Almost has an error\.$", 10)
        sees(r"^The state of the system files cannot be read$", 5)
        assert not dialogs(r"Invalid Configuration"), "a dialog nobody asked for"
        sees(r"^Invalid Configuration$", 5)
        expand(r"^Technical Details$")
        sees(r"almost\.toml", 5)
        check_names("the window with a broken configuration")
        screenshot("bad-config")
        assert not dialogs(r"Invalid Configuration"), "a dialog nobody asked for"
    finally:
        with open(host("/etc/almost/almost.toml"), "w") as f:
            f.write(good)
    sees(r"^System files are protected$", 10)
    wait_for(lambda: not find_all(LABEL, r"^Invalid Configuration$"), 10, "the row to go")


def scenario_french():
    stop_panel()
    start_panel(FR)
    sees(r"^Les fichiers système sont protégés$", 20)
    find(SWITCH, r"Protéger les fichiers système", 5)
    find(LABEL, r"^Couches$", 5)
    find(RADIO, r"^Mode au démarrage\u00a0: Protégés", 5)
    check_names("the French window")
    screenshot("french-window")
    stop_panel()
    start_panel()


def panel_uid():
    with open(f"/proc/{PANEL.pid}/status") as f:
        for line in f:
            if line.startswith("Uid:"):
                return int(line.split()[1])
    raise Failure("no Uid line for the panel")


def scenario_as_user():
    """The panel as an ordinary user (run.sh starts this one as nobody, in
    a namespace with a private system bus and polkitd): every change goes
    through the real pkexec, which asks polkitd; a test rule says yes
    unless --deny-file exists. Checks that the flags really change when
    polkit says yes, and that a refusal shows "Not Authorised" and changes
    nothing. With the ask file, polkit asks an authentication agent
    (test_agent.py): dismissed, a quiet toast and nothing changed; a wrong
    password typed, "Not Authorised" and nothing changed; the right one,
    the unlock and the lock happen. run.sh then reads the audit log as
    root: the acts were done by almost as root on behalf of uid 65534."""
    uid = panel_uid()
    assert uid != 0, "this scenario needs the panel to run as a user, not root"
    log(f"the panel runs as uid {uid}")
    switch = protection_switch()
    log("through pkexec; polkit says yes")
    toggle_protection(switch, False)
    toggle_protection(switch, True)
    log("polkit now says no: the switch is toggled off again")
    # Under no layer (beneath a layer's mount the flags are cleared).
    watched = ["/usr", "/usr/include", "/usr/include/fake.h"]
    before = {p: immutable(p) for p in watched}
    assert all(before.values()), f"the sandbox should be locked now: {before}"
    open(ARGS.deny_file, "w").close()
    try:
        act(switch)
        close_error(r"Not Authorised", r"your account may not change", "as-user-not-authorised")
    finally:
        os.remove(ARGS.deny_file)
    wait_for(lambda: checked(switch), 10, "the switch to go back to protected")
    sees(r"^System files are protected$", 10)
    after = {p: immutable(p) for p in watched}
    assert after == before, f"a refused unlock changed the flags: {before} -> {after}"

    log("polkit now asks for a password; the agent dismisses the request")
    with asking_agent("dismiss") as agent_log:
        act(switch)
        sees(r"^Authentication was dismissed: nothing changed$", 30)
        # The switch was on: the act is an unlock, and pkexec chose its
        # action by almost's first argument.
        assert "dismissed org.almost.unlock" in read(agent_log), read(agent_log)
        screenshot("as-user-dismissed")
    wait_for(lambda: checked(switch), 10, "the switch to go back to protected")
    after = {p: immutable(p) for p in watched}
    assert after == before, f"a dismissed unlock changed the flags: {before} -> {after}"

    log("polkit asks; the agent types a wrong password")
    with asking_agent("password", "not-" + ARGS.password) as agent_log:
        act(switch)
        close_error(r"Not Authorised", r"or the authentication failed", "as-user-wrong-password")
        assert "FAILURE org.almost.unlock as nobody" in read(agent_log), read(agent_log)
    wait_for(lambda: checked(switch), 10, "the switch to go back to protected")
    after = {p: immutable(p) for p in watched}
    assert after == before, f"an unlock with a wrong password changed the flags: {before} -> {after}"

    log("polkit asks; the agent types the right password, for the unlock and the lock")
    with asking_agent("password", ARGS.password) as agent_log:
        toggle_protection(switch, False)
        assert all(not immutable(p) for p in watched), "the unlock left flags set"
        toggle_protection(switch, True)
        said = read(agent_log)
        assert said.count("SUCCESS org.almost.unlock as nobody") == 1, said
        assert said.count("SUCCESS org.almost.lock as nobody") == 1, said
        assert "FAILURE" not in said, said


AGENTS = itertools.count(1)


@contextlib.contextmanager
def asking_agent(*mode):
    """While inside: polkit asks for authentication (the ask file exists)
    and tests/gui/test_agent.py, registered for the panel, answers in MODE
    ("dismiss", or "password" and the password to type). Yields its log."""
    ask = os.path.join(os.path.dirname(ARGS.deny_file), "ask")
    agent_log = os.path.join(ARGS.results, f"agent-{next(AGENTS)}-{mode[0]}.log")
    agent = subprocess.Popen([sys.executable, os.path.join(os.path.dirname(__file__), "test_agent.py"),
                              str(PANEL.pid), agent_log, *mode])
    try:
        wait_for(lambda: os.path.exists(agent_log) and "registered" in read(agent_log), 10,
                 "the agent to register")
        open(ask, "w").close()
        yield agent_log
    finally:
        if os.path.exists(ask):
            os.remove(ask)
        agent.terminate()
        agent.wait(10)


def scenario_demo_shots():
    """For the headless demo: the window, then the review of its first layer
    with the modified file's diff, each saved in --shots."""
    os.makedirs(ARGS.shots, exist_ok=True)
    sees(r"^System files are ", 20)
    find(BUTTON, r"Review the layer over ", 10)
    time.sleep(1)
    window_shot(r"^Almost", os.path.join(ARGS.shots, "panel.png"))
    press(r"Review the layer over ", 10)
    dialog = review_dialog()
    sees(r"^Apply \d+ changes? to ", 20)
    text = find(["text"], r"Difference of the selected file", 5, dialog)
    select_row(find(["list item"], r"^Modified: ", 5, dialog))
    wait_for(lambda: "Line " in text_of(text), 10, "the text diff of the modified file")
    window_shot(r"^Review Changes", os.path.join(ARGS.shots, "review.png"))
    press(r"^_?Cancel( Cancel)?$", 5, dialog)
    # The layers, scrolled into view by moving the focus to a layer's row.
    wait_for(lambda: not dialogs(r"Review Changes"), 10, "the review to close")
    focus_by_tab(find(BUTTON, r"Discard the layer over ", 10), 60)
    window_shot(r"^Almost", os.path.join(ARGS.shots, "layers.png"))


def x_window(title_pattern):
    """The X window id of the toplevel whose title matches, if shown."""
    rx = re.compile(title_pattern)
    out = subprocess.run(["xwininfo", "-root", "-tree"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        m = re.match(r'\s*(0x[0-9a-f]+) "(.*)": \(.*\)\s+(\d+)x(\d+)\+', line)
        if m and rx.search(m.group(2)) and int(m.group(3)) > 200 and int(m.group(4)) > 200:
            return int(m.group(1), 16), int(m.group(3))
    return None


def resize(title_pattern, width, height):
    """Resizes a toplevel as a window manager would (Xvfb has none: the
    request goes straight to the X server, through libX11)."""
    import ctypes
    x11 = ctypes.CDLL("libX11.so.6")
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XResizeWindow.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_uint, ctypes.c_uint]
    x11.XSync.argtypes = [ctypes.c_void_p, ctypes.c_int]
    x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    wid, _ = wait_for(lambda: x_window(title_pattern), 10, f"the X window {title_pattern!r}")
    display = x11.XOpenDisplay(None)
    if not display:
        raise Failure("cannot open the X display")
    try:
        x11.XResizeWindow(display, wid, width, height)
        x11.XSync(display, 0)
    finally:
        x11.XCloseDisplay(display)
    wait_for(lambda: (x_window(title_pattern) or (0, 0))[1] == width, 10,
             f"the window to be {width} px wide")


def too_wide(width, title="Almost"):
    """The shown widgets of the window TITLE that reach past WIDTH px."""
    frame = next(c for c in (find_app().get_child_at_index(i)
                             for i in range(find_app().get_child_count()))
                 if c is not None and shown(c) and name(c).startswith(title))
    out = []
    for node in walk(frame):
        if not shown(node):
            continue
        e = node.get_extents(Atspi.CoordType.WINDOW)
        # x = -1: GTK 4.8 reports the scrolled page's viewport one pixel
        # left of the window (seen at every width); nothing is cut there.
        if e.x < -1 or e.x + e.width > width:
            out.append(f"{role(node)} {name(node) or text_of(node)!r} x={e.x} w={e.width}")
    return out


def inside(node, width):
    """Whether NODE is shown within the first WIDTH px of its window."""
    try:
        e = node.get_extents(Atspi.CoordType.WINDOW)
    except Exception:
        return False
    return e.width > 0 and e.x >= -1 and e.x + e.width <= width


def check_narrow(label):
    """At 360 px wide every shown widget of the window fits in it (the
    window's minimum width is no wider: a wider one would overflow)."""
    resize(r"^Almost", 360, 800)
    time.sleep(1)  # a relayout after the configure event
    wide = too_wide(360)
    screenshot(f"narrow-{label}")
    window_shot(r"^Almost", os.path.join(ARGS.results, f"window-narrow-{label}.png"))
    if wide:
        raise Failure(f"{label}: wider than 360 px: " + "; ".join(wide[:15]))
    log(f"{label}: every shown widget fits in 360 px")


def scenario_narrow():
    sees(r"^System files are protected$", 20)
    check_narrow("en")
    # The review at 360 px: the list, then the diff of the chosen file
    # (a page of its own, with a way back), and Esc closes it.
    press(r"Review the layer over /usr/share", 10)
    dialog = review_dialog()
    try:
        narrow_review(dialog)
    finally:
        # Whatever failed, the next scenarios need the review closed.
        if dialogs(r"Review Changes"):
            press(r"^_?Cancel( Cancel)?$", 5, dialog)
    find(BUTTON, r"Review the layer over /usr/share$", 5)


def narrow_review(dialog):
    sees(r"^Apply 3 changes to /usr/share$", 20)
    # A change left out (its check, by keyboard: its row chosen, Tab
    # enters the list there), so that the longer "Apply 2 of 3 Changes"
    # is the button that must fit in 360 px.
    added = find(["check box"], r"^Include /usr/share/doc/added\.txt$", 5, dialog)
    select_row(row_of(added))
    focus_by_tab(added)
    key("space")
    wait_for(lambda: not checked(added), 5, "the check to turn off")
    resize(r"^Review Changes", 360, 640)
    time.sleep(1)
    # A folded leaflet keeps its other page allocated beside the window
    # (clipped): what counts is what lies inside it.
    text = find(["text"], r"Difference of the selected file", 5, dialog)
    modified = find(["list item"], r"^Modified: /usr/share/doc/modify.txt", 5, dialog)
    rows = find_all(["list item"], r"^(Added|Modified|Deleted): ", dialog)
    buttons = [find(BUTTON, r"^_?Apply 2 of 3 Changes", 5, dialog),
               find(BUTTON, r"^_?Cancel", 5, dialog), added]
    # Folded (it may take a moment under load), the review shows the
    # list, not a diff squeezed beside it.
    wait_for(lambda: not inside(text, 360), 10, "the review to fold to the list")
    cut = [name(n) for n in rows + buttons if not inside(n, 360)]
    assert len(rows) == 3 and not cut, f"not within 360 px: {cut}"
    window_shot(r"^Review Changes", os.path.join(ARGS.results, "window-review-narrow-list.png"))
    select_row(modified)
    wait_for(lambda: inside(text, 360) and "+TWO" in text_of(text), 10,
             "the diff page of modify.txt")
    window_shot(r"^Review Changes", os.path.join(ARGS.results, "window-review-narrow.png"))
    # GTK 4.8 keeps the extents of the page turned away as they were:
    # the back button, on the diff page only, shows that the page turned.
    back = find(BUTTON, r"^Back to the list of changes", 5, dialog)
    wait_for(lambda: inside(back, 360), 5, "the diff page's back button")
    log("press", repr(name(back)))
    act(back)
    wait_for(lambda: inside(modified, 360) and not inside(back, 360), 5, "the list again")
    key("Escape")
    wait_for(lambda: not dialogs(r"Review Changes"), 10, "Esc to close the review")
    # The translations at 360 px too (German's words are the longest).
    headlines = {
        "fr": r"^Les fichiers système sont protégés$",
        "de": r"^Systemdateien sind geschützt$",
        "es": r"^Los archivos del sistema están protegidos$",
    }
    try:
        for lang, headline in headlines.items():
            stop_panel()
            start_panel({"LANGUAGE": lang, "LANG": "C.UTF-8"})
            sees(headline, 20)
            check_narrow(lang)
    finally:
        stop_panel()
        start_panel()


def scenario_slow_switch():
    """The switch during an act that takes its time: a copy of the panel
    whose almost (a wrapper beside it, which the panel runs as the almost
    next to it) holds lock and unlock while a file exists. The handle moves
    at once, the row says what is under way with a spinner, the flags are
    untouched until almost runs, and the switch settles when it ends."""
    import shutil
    slow = os.path.join(os.path.dirname(os.path.abspath(ARGS.pid_file)), "slow")
    os.makedirs(slow, exist_ok=True)
    hold = os.path.join(slow, "hold")
    panel = os.path.join(slow, "almost-panel")
    shutil.copy2(ARGS.panel, panel)
    wrapper = os.path.join(slow, "almost")
    with open(wrapper, "w") as f:
        f.write(f"""#!/bin/sh
for a in "$@"; do
    case "$a" in lock|unlock)
        n=0
        while [ -e '{hold}' ] && [ $n -lt 600 ]; do sleep 0.1; n=$((n + 1)); done
        break;;
    esac
done
exec '{ARGS.almost}' "$@"
""")
    os.chmod(wrapper, 0o755)
    stop_panel()
    try:
        start_panel(panel=panel)
        switch = protection_switch()
        for on in (False, True):
            open(hold, "w").close()
            log(f"toggle the switch {'on' if on else 'off'} while almost is held")
            act(switch)
            wait_for(lambda: checked(switch) == on, 3, "the handle to move at once")
            sees(r"^Turning protection on…$" if on else r"^Turning protection off…$", 3)
            find([], r"^Working$", 3)
            screenshot(f"slow-switch-{'on' if on else 'off'}")
            # Polls come and go meanwhile: the handle stays, nothing changed yet.
            time.sleep(3)
            assert checked(switch) == on, "the handle went back while almost worked"
            assert immutable("/usr/include/fake.h") != on, "almost acted before it was let go"
            os.remove(hold)
            wait_for(lambda: immutable("/usr/include/fake.h") == on, 30, "almost to act")
            sees(r"^Programs cannot change system files$" if on
                 else r"^Programs running as administrator can change them$", 10)
            wait_for(lambda: not find_all([], r"^Working$"), 5, "the spinner to go")
            assert checked(switch) == on
    finally:
        if os.path.exists(hold):
            os.remove(hold)
        stop_panel()
        start_panel()


def back_on_radio(title, timeout=10):
    return find(RADIO, rf"^Turn back on: {title}( {title})?$", timeout)


def relock_at():
    r = almost("--json", "status")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1]).get("relock_at")


def scenario_back_on():
    """"Turn Back On": picked while protected, it waits for the switch;
    the timer runs with its time left shown; picked while unprotected, it
    applies at once; and without a timer it says "At Restart" only when
    the mode at startup protects, "Never" otherwise."""
    switch = protection_switch()
    at_restart = back_on_radio("At Restart", 20)
    ten = back_on_radio("After 10 Minutes")
    hour = back_on_radio("After 1 Hour")
    radios = [at_restart, ten, hour]
    wait_for(lambda: checked(at_restart), 5, "At Restart to be the choice")
    sees(r"^After protection is turned off$", 5)
    log("pick After 10 Minutes while protected: nothing happens yet")
    pick_radio(radios, ten)
    wait_for(lambda: checked(ten), 5, "After 10 Minutes to be checked")
    time.sleep(1)
    assert immutable("/usr/include/fake.h"), "a pick while protected unprotected the files"
    toggle_protection(switch, False)
    at = relock_at()
    assert at and 540 <= at - time.time() <= 610, f"a 10 minute timer, not {at}"
    sees(r"^Protected again in (9|10) minutes$", 10)
    screenshot("back-on-timer")
    log("pick At Restart while unprotected: the timer ends")
    pick_radio(radios, at_restart)
    wait_for(lambda: relock_at() is None, 30, "the timer to end")
    sees(r"^Protected again when the computer restarts$", 10)
    assert not immutable("/usr/include/fake.h")
    log("the mode at startup is As it was: no timer means Never")
    r = almost("config", "set", "default_mode", "keep")
    assert r.returncode == 0, r.stderr
    try:
        back_on_radio("Never", 30)
        sees(r"^Stays unprotected until you turn it on$", 5)
        assert not find_all(RADIO, r"^Turn back on: At Restart"), "At Restart is still offered"
    finally:
        r = almost("config", "set", "default_mode", "locked")
        assert r.returncode == 0, r.stderr
    back_on_radio("At Restart", 30)
    toggle_protection(switch, True)


# --- the History (issue 15) ---------------------------------------------------

def cli_commit(path, write):
    """A layer over PATH made and committed with the real almost (as root,
    on the sandbox); WRITE(host_dir) makes its changes. Returns its id."""
    r = almost("layer", "new", path)
    assert r.returncode == 0, r.stderr
    layer = r.stdout.strip().splitlines()[-1]
    write(host(path))
    r = almost("layer", "commit", layer, "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    return layer


def history_ids():
    r = almost("--json", "layer", "history")
    assert r.returncode == 0, r.stderr
    return [c["id"] for c in json.loads(r.stdout.strip().splitlines()[-1])["commits"]]


def undo_buttons(path):
    return find_all(BUTTON, rf"^Undo the changes applied to {re.escape(path)} ")


def scenario_history():
    """The History with commits made by the real almost on the sandbox:
    two commits over /usr/include, the second replacing the program the
    first added (a copy of sleep, then started from the sandbox). Show
    lists both, newest first; Undo of the older is refused and explained
    naming the later one (the tree unchanged on disk); Undo of the newer,
    confirmed, puts the program back as the first commit left it (checked
    on disk), its entry goes, and the programs still running the replaced
    file are listed in a dialog that stays (the sandbox sleep, by its
    process); Recent Actions lists the acts."""
    prog = "/usr/include/prog"
    first = read_bytes("/bin/sleep")
    # The same program with a byte more: another file, still runnable.
    second = first + b"\0"

    def add(d):
        with open(os.path.join(d, "prog"), "wb") as f:
            f.write(first)
        os.chmod(os.path.join(d, "prog"), 0o755)

    def replace(d):
        os.unlink(os.path.join(d, "prog"))
        with open(os.path.join(d, "prog"), "wb") as f:
            f.write(second)
        os.chmod(os.path.join(d, "prog"), 0o755)

    a = cli_commit("/usr/include", add)
    b = cli_commit("/usr/include", replace)
    assert history_ids()[:2] == [b, a], history_ids()
    runner = subprocess.Popen([host(prog), "600"])
    try:
        stop_panel()
        start_panel()
        sees(r"^Not Read Yet$", 20)
        # The acts the CLI did are in the audit log, read without asking.
        sees(r"^Applied the changes of a layer: /usr/include$", 20)
        press(r"^Show the applied changes$", 10)
        # Earlier scenarios may have left older commits over /usr/include.
        listed = len(history_ids()) and sum(
            1 for c in json.loads(almost("--json", "layer", "history").stdout
                                  .strip().splitlines()[-1])["commits"]
            if c["paths"] == ["/usr/include"])
        wait_for(lambda: len(undo_buttons("/usr/include")) == listed, 20,
                 f"{listed} commits over /usr/include listed")
        sees(r"^just now, by .* · 1 added, 0 changed, 0 deleted · .* kept to undo it$", 5)
        check_names("the History")
        # The History scrolled into view by moving the focus to its last
        # Undo button.
        focus_by_tab(undo_buttons("/usr/include")[-1], 80)
        screenshot("history")
        window_shot(r"^Almost", os.path.join(ARGS.results, "window-history.png"))
        # The listed commits fit at 360 px too (the rest runs that wide).
        check_narrow("history")
        # The older one first: later changes touched its file.
        act(undo_buttons("/usr/include")[1])
        dialog = wait_for(lambda: (dialogs(r"Undo These Applied Changes") or [None])[0], 10,
                          "the confirmation")
        sees(r"^The changes applied to /usr/include just now are taken back: the 1 entry "
             r"it added is removed\. Whatever was written", 5)
        press(r"^_?Undo( Undo)?$", 5, dialog)
        refused = wait_for(lambda: (dialogs(r"^Later Changes Come First") or [None])[0], 30,
                           "the refusal")
        sees(r"^The changes applied to /usr/include cannot be undone yet: later changes "
             r"touched the same files \(the changes applied to /usr/include just now\)\. "
             r"Undo that first, then this one\. Nothing was changed\.$", 5)
        expand(r"^Technical Details$", refused)
        sees(r"later|conflict|undo", 5)
        time.sleep(0.5)  # let it finish drawing
        screenshot("history-refused")
        press(r"^_?Close( Close)?$", 5, refused)
        assert read_bytes(host(prog)) == second, "a refused undo changed the tree"
        assert history_ids()[:2] == [b, a], history_ids()
        # The newer one: confirmed, undone.
        act(undo_buttons("/usr/include")[0])
        dialog = wait_for(lambda: (dialogs(r"Undo These Applied Changes") or [None])[0], 10,
                          "the confirmation")
        sees(r"the 1 entry it changed gets its earlier content back", 5)
        press(r"^_?Undo( Undo)?$", 5, dialog)
        restart = wait_for(lambda: (dialogs(r"^A Program Needs a Restart") or [None])[0], 30,
                           "the restart list")
        sees(rf"^1 program still uses files that were replaced or deleted: “prog” "
             rf"\(process {runner.pid}\)\. It runs the old version", 5)
        expand(r"^Technical Details$", restart)
        sees(rf"^{runner.pid} prog: /usr/include/prog$", 5)
        time.sleep(0.5)  # let it finish drawing
        screenshot("history-restart")
        window_shot(r"^Almost", os.path.join(ARGS.results, "window-history-restart.png"))
        assert read_bytes(host(prog)) == first, "the program is not back as the first commit left it"
        assert history_ids()[0] == a, history_ids()
        wait_for(lambda: len(undo_buttons("/usr/include")) == listed - 1, 10,
                 "the undone entry to go")
        # The dialog stays until closed.
        time.sleep(2)
        assert dialogs(r"^A Program Needs a Restart"), "the restart list went by itself"
        press(r"^_?Close( Close)?$", 5, restart)
        sees(r"^Undid applied changes", 10)
        # The older one can go now; the tree is as before both.
        act(undo_buttons("/usr/include")[0])
        dialog = wait_for(lambda: (dialogs(r"Undo These Applied Changes") or [None])[0], 10,
                          "the confirmation")
        press(r"^_?Undo( Undo)?$", 5, dialog)
        wait_for(lambda: not os.path.exists(host(prog)), 30, "the program to go")
        # sleep runs the second commit's file, gone already: whether the
        # scan names it again is almost's call; close the list if it does.
        time.sleep(1)
        for d in dialogs(r"^A Program Needs a Restart"):
            press(r"^_?Close( Close)?$", 5, d)
        wait_for(lambda: len(undo_buttons("/usr/include")) == listed - 2, 10,
                 "the entry to go")
        assert a not in history_ids() and b not in history_ids()
        # Recent Actions: the last 5 acts, Show All the rest (this
        # scenario alone made more than 5).
        acts = r"^just now, by \S+ · (done|no end recorded|failed: .*)$"
        wait_for(lambda: len(find_all(LABEL, acts)) == 5, 10, "5 recent acts")
        press(r"^Show all recent actions$", 10)
        wait_for(lambda: len(find_all(LABEL, acts)) > 5, 10, "all the recent acts")
        assert not find_all(BUTTON, r"^Show all recent actions$"), "Show All stays"
        log(f"{len(find_all(LABEL, acts))} recent acts after Show All")
        # In French: the groups, the state before Show, the acts in words.
        stop_panel()
        start_panel(FR)
        sees(r"^Modifications appliquées$", 20)
        sees(r"^Pas encore lues$", 10)
        sees(r"^Actions récentes$", 5)
        sees(r"^Modifications appliquées défaites\u00a0?\s?: /usr/include$", 10)
        find(BUTTON, r"^Afficher les modifications appliquées$", 5)
        stop_panel()
        start_panel()
    finally:
        runner.kill()
        runner.wait()


def scenario_restart_commit():
    """A commit from the review that replaces a program a sandbox process
    runs (a copy of sleep under /usr/include, committed by the CLI, then
    started from the sandbox): after Apply Changes the window lists it in
    a dialog that stays ("“tool2” (process N)"), the file on disk is the
    layer's."""
    prog = "/usr/include/tool2"
    first = read_bytes("/bin/sleep")
    second = first + b"\0\0"

    def add(d):
        with open(os.path.join(d, "tool2"), "wb") as f:
            f.write(first)
        os.chmod(os.path.join(d, "tool2"), 0o755)

    cli_commit("/usr/include", add)
    runner = subprocess.Popen([host(prog), "600"])
    try:
        r = almost("layer", "new", "/usr/include")
        assert r.returncode == 0, r.stderr
        os.unlink(host(prog))
        with open(host(prog), "wb") as f:
            f.write(second)
        os.chmod(host(prog), 0o755)
        # A fresh window: a row read before the CLI's commit would still
        # name the committed layer.
        stop_panel()
        start_panel()
        press(r"Review the layer over /usr/include$", 30)
        dialog = review_dialog()
        sees(r"^Apply 1 change to /usr/include$", 20)
        press(r"^_?Apply Changes( Apply Changes)?$", 5, dialog)
        restart = wait_for(lambda: (dialogs(r"^A Program Needs a Restart") or [None])[0], 30,
                           "the restart list")
        sees(rf"^1 program still uses files that were replaced or deleted: “tool2” "
             rf"\(process {runner.pid}\)\.", 5)
        # With the commit's toast and its Undo button (was "Undo Undo").
        check_names("the restart list")
        time.sleep(0.5)  # let it finish drawing
        screenshot("restart-commit")
        assert read_bytes(host(prog)) == second, "the layer's program is not in the tree"
        time.sleep(2)
        assert dialogs(r"^A Program Needs a Restart"), "the restart list went by itself"
        press(r"^_?Close( Close)?$", 5, restart)
        wait_for(lambda: not dialogs(r"^A Program Needs a Restart"), 10, "the list to close")
    finally:
        runner.kill()
        runner.wait()


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def scenario_explore():
    dump(os.path.join(ARGS.results, "tree.txt"))


SCENARIOS = {
    "startup": scenario_startup,
    "protection": scenario_protection,
    "outside": scenario_outside,
    "startup_mode": scenario_startup_mode,
    "slow_switch": scenario_slow_switch,
    "back_on": scenario_back_on,
    "narrow": scenario_narrow,
    "dark_diff": scenario_dark_diff,
    "review_commit": scenario_review_commit,
    "review_content": scenario_review_content,
    "review_select": scenario_review_select,
    "review_folder": scenario_review_folder,
    "undo": scenario_undo,
    "discard": scenario_discard,
    "busy_error": scenario_busy_error,
    "bad_config": scenario_bad_config,
    "french": scenario_french,
    "explore": scenario_explore,
    "announce": scenario_announce,
    "software_change": scenario_software_change,
    "history": scenario_history,
    "restart_commit": scenario_restart_commit,
    "demo_shots": scenario_demo_shots,
    "as_user": scenario_as_user,
}


def main():
    global ARGS, LOG
    p = argparse.ArgumentParser()
    p.add_argument("--root", required=True)
    p.add_argument("--panel", required=True)
    p.add_argument("--almost", required=True)
    p.add_argument("--results", required=True)
    p.add_argument("--pid-file", required=True)
    p.add_argument("--shots", help="where demo_shots saves its PNGs")
    p.add_argument("--deny-file", help="as_user: while this file exists, polkit says no")
    p.add_argument("--password", help="as_user: nobody's password in run.sh's namespace")
    p.add_argument("scenarios", nargs="*")
    ARGS = p.parse_args()
    names = ARGS.scenarios or [n for n in SCENARIOS
                               if n not in ("explore", "demo_shots", "as_user")]
    passed = failed = 0
    try:
        start_panel()
        for n in names:
            LOG = open(os.path.join(ARGS.results, f"{n}.log"), "w")
            log(f"== {n}")
            started = time.monotonic()
            try:
                if PANEL is None or PANEL.poll() is not None:
                    if PANEL is not None:
                        log(f"the panel had exited with status {PANEL.returncode}: starting it again")
                    start_panel()
                SCENARIOS[n]()
                log(f"PASS {n} ({time.monotonic() - started:.1f} s)")
                passed += 1
            except Exception as e:  # noqa: BLE001 - every failure is reported
                log(f"FAIL {n}: {e}")
                log(traceback.format_exc())
                failed += 1
                try:
                    dump(os.path.join(ARGS.results, f"{n}-tree.txt"))
                except Exception:  # noqa: BLE001
                    pass
            finally:
                screenshot(n)
                LOG.close()
                LOG = None
    finally:
        stop_panel()
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
