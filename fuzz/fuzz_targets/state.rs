// SPDX-License-Identifier: GPL-3.0-or-later
//! `state.json`: `state::parse` on any bytes. It never fails: what does
//! not parse reads as damaged, "restore locked" and nothing else (no run,
//! no timer, no temporary unlock); what parses reads back the same once
//! written again (as `StateGuard::save` writes it).

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
    assert!(
        serde_json::from_slice::<serde_json::Value>(data).is_ok(),
        "not JSON, yet read as a state"
    );
    let bytes = serde_json::to_vec_pretty(&parsed).expect("encoding");
    assert_eq!(state::parse(&bytes), parsed);
});
