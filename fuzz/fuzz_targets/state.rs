// SPDX-License-Identifier: GPL-3.0-or-later
//! `state.json`: `state::parse` on any bytes. It never fails: what does
//! not parse reads as damaged, "restore locked" and nothing else (no run,
//! no timer, no temporary unlock); what parses reads back the same once
//! written again (as `StateGuard::save` writes it). Unknown fields are
//! ignored (a newer almost may have written them).

#![no_main]

use almost_core::protocol::Mode;
use almost_core::state;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let parsed = state::parse(data);
    if parsed.damaged.is_some() {
        assert_eq!(parsed.restore, Some(Mode::Locked));
        assert!(parsed.runs.is_empty());
        assert_eq!((parsed.relock_at, parsed.timer), (None, None));
        for now in [0, 1, u64::MAX] {
            assert!(!parsed.temporary_unlock_active(now));
        }
        return;
    }
    // A JSON object (or array: serde reads a struct from either). Not
    // necessarily valid JSON throughout: serde_json skips the value of an
    // unknown field without checking its UTF-8.
    assert!(
        data.trim_ascii_start().starts_with(b"{") || data.trim_ascii_start().starts_with(b"["),
        "not a JSON object, yet read as a state"
    );
    let bytes = serde_json::to_vec_pretty(&parsed).expect("encoding");
    assert_eq!(state::parse(&bytes), parsed);
});
