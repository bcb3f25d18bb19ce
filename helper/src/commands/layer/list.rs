// SPDX-License-Identifier: GPL-3.0-or-later
//! `almost layer list`: the layers with their state, changes and size.

use almost_core::Result;
use almost_core::layer::{AtBoot, LayerInfo, Layers, PrivateMounts};
use almost_core::state;
use almost_core::system::System;
use almost_protocol::CommandResult;

use crate::commands::Ctx;
use crate::wire;

pub fn run(ctx: Ctx) -> Result<i32> {
    let Ctx { out, private, .. } = ctx;
    let infos = infos(ctx.sys, private)?;
    let list = almost_protocol::LayerList {
        layers: infos.iter().map(wire::layer).collect(),
    };
    out.answer(list, CommandResult::LayerList, |_| list_text(&infos));
    Ok(0)
}

/// The layers with their state; their changes counted when `private`
/// lets this process look beneath their mounts.
pub fn infos(sys: &System, private: Option<&PrivateMounts>) -> Result<Vec<LayerInfo>> {
    let layers = Layers::new(sys);
    let metas = layers.all()?;
    // Mount states first: the diffs below take mounts away (in this
    // process's private namespace only).
    let infos: Vec<LayerInfo> = metas.into_iter().map(|m| layers.info(m, None)).collect();
    Ok(infos
        .into_iter()
        .map(|mut info| {
            if let Some(private) = private {
                info.changes = layers
                    .diff(&info.meta, false, private)
                    .ok()
                    .map(|c| c.len() as u64);
            }
            info
        })
        .collect())
}

/// The text of `layer list`.
pub fn list_text(infos: &[LayerInfo]) -> String {
    if infos.is_empty() {
        return "No layers. Make one with `almost layer new PATH`.\n".to_owned();
    }
    let mut text = format!(
        "{:<10} {:<24} {:<11} {:<8} {:>8} {:>10}\n",
        "ID", "PATH", "CREATED", "MOUNTED", "CHANGES", "SIZE"
    );
    for i in infos {
        let age = state::now().saturating_sub(i.meta.created);
        // A layer of several directories names them on a line of their
        // own below its row: the column stays a column.
        let parts = i.meta.parts();
        let column = match parts.len() {
            1 => super::shown_parts(parts),
            n if i.meta.system => format!("system ({n} directories)"),
            n => format!("{n} directories"),
        };
        text.push_str(&format!(
            "{:<10} {:<24} {:<11} {:<8} {:>8} {:>10}{}\n",
            i.meta.id,
            column,
            age_words(age),
            if i.mounted { "yes" } else { "no" },
            i.changes.map_or("?".to_owned(), |c| c.to_string()),
            size_words(i.size),
            match (i.pending, i.meta.temporary) {
                (Some(AtBoot::Commit), _) => "  (committed at the next boot)",
                (Some(AtBoot::Discard), _) => "  (discarded at the next boot)",
                (None, true) => "  (temporary)",
                (None, false) => "",
            },
        ));
        if parts.len() > 1 {
            text.push_str(&format!("{:<10} {}\n", "", super::shown_parts(parts)));
        }
    }
    text
}

pub(super) fn size_words(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

fn age_words(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s} s ago"),
        s if s < 7200 => format!("{} min ago", s / 60),
        s if s < 2 * 86400 => format!("{} h ago", s / 3600),
        s => format!("{} days ago", s / 86400),
    }
}
