#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Checks the development flatpak manifest as data (it cannot be built
here: no runtime can be downloaded): valid JSON, the keys flatpak-builder
needs, the application id that meson's development profile gives the panel,
the GNOME 43 runtime with the Rust extension, the finish-args the panel
needs, and a meson module built with the development profile.

Usage: check-flatpak-manifest.py MANIFEST APP_ID
"""
import json
import sys


def main(manifest_path, app_id):
    with open(manifest_path, encoding="utf-8") as f:
        try:
            m = json.load(f)
        except json.JSONDecodeError as e:
            return [f"not valid JSON: {e}"]
    errors = check(m, app_id)
    if not errors:
        errors = controls(m, app_id)
    return errors


def controls(m, app_id):
    """The checks must catch a broken copy of the good manifest."""
    breakages = {
        "another id": lambda c: c.update(id=app_id + ".Other"),
        "GNOME 45": lambda c: c.update({"runtime-version": "45"}),
        "no rust extension": lambda c: c.update({"sdk-extensions": []}),
        "no flatpak-spawn": lambda c: c["finish-args"].remove("--talk-name=org.freedesktop.Flatpak"),
        "host filesystem": lambda c: c["finish-args"].append("--filesystem=host"),
        "cmake": lambda c: c["modules"][-1].update(buildsystem="cmake-ninja"),
        "no command": lambda c: c.pop("command"),
    }
    errors = []
    for what, breaks in breakages.items():
        copy = json.loads(json.dumps(m))
        breaks(copy)
        if not check(copy, app_id):
            errors.append(f"control: the check does not catch {what}")
    return errors


def check(m, app_id):
    errors = []
    for key in ("id", "runtime", "runtime-version", "sdk", "command", "finish-args", "modules"):
        if key not in m:
            errors.append(f"missing key {key!r}")
    if m.get("id") != app_id:
        errors.append(f"id {m.get('id')!r} is not the development profile's {app_id!r}")
    if m.get("runtime") != "org.gnome.Platform" or m.get("sdk") != "org.gnome.Sdk":
        errors.append("runtime/sdk must be org.gnome.Platform/org.gnome.Sdk")
    if m.get("runtime-version") != "43":
        errors.append("runtime-version must be 43 (GTK 4.8 / libadwaita 1.2, what the panel builds against)")
    if "org.freedesktop.Sdk.Extension.rust-stable" not in m.get("sdk-extensions", []):
        errors.append("sdk-extensions lacks org.freedesktop.Sdk.Extension.rust-stable")
    if "/usr/lib/sdk/rust-stable/bin" not in m.get("build-options", {}).get("append-path", ""):
        errors.append("build-options.append-path lacks /usr/lib/sdk/rust-stable/bin")
    if m.get("command") != "almost-panel":
        errors.append("command must be almost-panel")
    args = m.get("finish-args", [])
    for needed in ("--talk-name=org.freedesktop.Flatpak", "--socket=wayland",
                   "--socket=fallback-x11", "--share=ipc", "--device=dri"):
        if needed not in args:
            errors.append(f"finish-args lacks {needed}")
    for arg in args:
        if arg in ("--filesystem=host", "--filesystem=/usr", "--device=all") or arg.startswith("--filesystem=host-os"):
            errors.append(f"finish-args grants too much: {arg}")
    modules = [mod for mod in m.get("modules", []) if isinstance(mod, dict)]
    ours = [mod for mod in modules if mod.get("name") == "almost"]
    if len(ours) != 1:
        errors.append("exactly one module named almost expected")
    else:
        mod = ours[0]
        if mod.get("buildsystem") != "meson":
            errors.append("the almost module must use the meson buildsystem")
        if "-Dprofile=development" not in mod.get("config-opts", []):
            errors.append("the almost module must pass -Dprofile=development")
        if not mod.get("sources"):
            errors.append("the almost module has no sources")
    return errors


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        sys.exit(2)
    problems = main(sys.argv[1], sys.argv[2])
    for p in problems:
        print(f"{sys.argv[1]}: {p}", file=sys.stderr)
    sys.exit(1 if problems else 0)
