#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The translations are complete: every message of the sources listed in
# po/POTFILES.in, extracted afresh (not read from the committed template,
# which may be stale), has a translation in po/LANG.po that is neither
# missing nor fuzzy (msgcmp). The data files are read with gettext's ITS
# rules (the polkit policy's come with polkitd).
# Usage: check-translations.sh SOURCE_DIR LANG
set -eu
src=$1 lang=$2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/almost-po.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
grep -v '^#' "$src/po/POTFILES.in" | grep . >"$tmp/files"
cd "$src"
xgettext --from-code=UTF-8 --keyword=i18n --keyword=i18n_f --keyword=ni18n:1,2 \
    --keyword=ni18n_f:1,2 -f "$tmp/files" -o "$tmp/fresh.pot" 2>"$tmp/xgettext.log" || {
    cat "$tmp/xgettext.log" >&2
    exit 1
}
# The control: the policy's messages must have been extracted (without
# its ITS rules xgettext would silently skip the file).
grep -q 'Authentication is required to unlock the system files' "$tmp/fresh.pot" || {
    echo "the polkit policy's messages were not extracted (ITS rules missing?)" >&2
    exit 1
}
msgcmp "po/$lang.po" "$tmp/fresh.pot"
echo "po/$lang.po translates every message of the sources"
