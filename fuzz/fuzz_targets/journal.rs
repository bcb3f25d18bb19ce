// SPDX-License-Identifier: GPL-3.0-or-later
//! The commit journal (`commit.json`, a history entry's `undo.json`):
//! `layer::commit::parse_journal` on any bytes. Every path of a journal it
//! accepts, joined to the covered tree as a commit or an undo joins it,
//! stays inside that tree, the layer passes the `layer.json` checks, and
//! the journal reads back the same once written again.

#![no_main]

use std::path::Path;

use almost_core::Error;
use almost_core::layer::{self, commit};
use libfuzzer_sys::fuzz_target;

fn check_accepted(journal: &commit::Journal, file: &Path) {
    let config = almost_fuzz::config();
    let layer_json = serde_json::to_vec(&journal.layer).expect("encoding");
    layer::parse_meta(file, &journal.layer.id, config, &layer_json)
        .expect("a journal's layer that layer.json would refuse");
    // Each part's paths are joined to that part's directory.
    for (top, part) in journal.layer.parts().iter().zip(&journal.parts) {
        let named = part
            .ops
            .iter()
            .flat_map(|op| std::iter::once(&op.rel).chain(op.link_to.as_ref()))
            .chain(part.after.entries.keys())
            .chain(part.before.entries.keys())
            .chain(
                [&part.after, &part.before]
                    .into_iter()
                    .flat_map(|exp| exp.links.iter().flatten().flatten()),
            );
        for rel in named {
            let joined = top.join(rel);
            assert!(joined != *top, "{rel:?} is the top itself");
            assert!(
                almost_fuzz::lexically_inside(&joined, top),
                "{rel:?} leaves {top:?}"
            );
        }
        let listed = part
            .after
            .listings
            .keys()
            .chain(part.before.listings.keys());
        for rel in listed {
            assert!(
                almost_fuzz::lexically_inside(&top.join(rel), top),
                "{rel:?} leaves {top:?}"
            );
        }
    }
    let bytes = serde_json::to_vec(journal).expect("encoding");
    let again = commit::parse_journal(file, config, &bytes).expect("written back, refused");
    assert_eq!(&again, journal);
}

fuzz_target!(|data: &[u8]| {
    let file = Path::new("/var/lib/almost/commits/0badc0de/undo.json");
    match commit::parse_journal(file, almost_fuzz::config(), data) {
        Ok(journal) => check_accepted(&journal, file),
        Err(Error::InvalidPath { path, .. }) => assert_eq!(Path::new(&path), file),
        Err(e) => panic!("not an invalid-path error: {e}"),
    }
});
