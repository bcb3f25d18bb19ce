// SPDX-License-Identifier: GPL-3.0-or-later
//! What the tree must look like before and after a commit: captured from
//! a tree, compared with one.
//!
//! Both read every touched entry from disk (its content hashed, as
//! [`Description::of`] does) and every touched directory's listing, on
//! rayon's threads (each entry looked up by its name in its directory,
//! kept open for its neighbours: `entry::DirCache`): each entry and each
//! listing is read on its own, and
//! the results are put in path order before anything is compared or
//! kept, so the expectation and the list of differences are the same as
//! read one by one. The verification of a commit reads back the tree as
//! it now is on disk; it does not trust what the commit wrote.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::journal::Expectation;
use crate::layer::entry::{Description, DirCache, EntryType};

/// The link groups among `paths` in `base` (see [`Expectation::links`]).
pub(super) fn link_groups<'p>(
    base: &Path,
    paths: impl Iterator<Item = &'p PathBuf>,
) -> io::Result<Vec<Vec<PathBuf>>> {
    let paths: Vec<&PathBuf> = paths.collect();
    let found = paths
        .par_iter()
        .map_init(DirCache::default, |dirs, rel| dirs.lstat(base, rel))
        .collect::<io::Result<Vec<_>>>()?;
    let mut inodes: BTreeMap<(u64, u64), Vec<PathBuf>> = BTreeMap::new();
    for (rel, st) in paths.into_iter().zip(found) {
        if let Some(st) = st
            && st.st_mode & libc::S_IFMT != libc::S_IFDIR
            && st.st_nlink > 1
        {
            inodes
                .entry((st.st_dev, st.st_ino))
                .or_default()
                .push(rel.clone());
        }
    }
    let mut groups: Vec<Vec<PathBuf>> = inodes
        .into_values()
        .filter(|names| names.len() > 1)
        .map(|mut names| {
            names.sort();
            names
        })
        .collect();
    groups.sort();
    Ok(groups)
}

/// Describes what `base` shows at every path the upper tree touches.
pub(super) fn capture(
    base: &Path,
    touched: &[PathBuf],
    skip_name: &str,
) -> io::Result<Expectation> {
    capture_knowing(base, touched, skip_name, &HashMap::new())
}

/// [`capture`], taking the description of a path in `known` (read from
/// `base` just before, by the plan) rather than reading it again.
pub(super) fn capture_knowing(
    base: &Path,
    touched: &[PathBuf],
    skip_name: &str,
    known: &HashMap<PathBuf, Option<Description>>,
) -> io::Result<Expectation> {
    let mut exp = Expectation::default();
    let mut dirs = vec![PathBuf::new()];
    let descs = touched
        .par_iter()
        .map_init(DirCache::default, |dirs, rel| match known.get(rel) {
            Some(desc) => Ok(desc.clone()),
            None => dirs.describe(base, rel),
        })
        .collect::<io::Result<Vec<_>>>()?;
    for (rel, desc) in touched.iter().zip(descs) {
        if desc.as_ref().is_some_and(|d| d.kind == EntryType::Dir) {
            dirs.push(rel.clone());
        }
        exp.entries.insert(rel.clone(), desc);
    }
    exp.links = Some(link_groups(base, touched.iter())?);
    let listings = dirs
        .par_iter()
        .map(|dir| listing(&base.join(dir), skip_name))
        .collect::<io::Result<Vec<_>>>()?;
    exp.listings = dirs.into_iter().zip(listings).collect();
    Ok(exp)
}

/// The names in the directory `path` but `skip_name`, as almost-protocol's
/// strings, sorted.
fn listing(path: &Path, skip_name: &str) -> io::Result<Vec<String>> {
    let mut names: Vec<String> = fs::read_dir(path)?
        .map(|e| e.map(|e| almost_protocol::path::encode_name(&e.file_name())))
        .collect::<io::Result<_>>()?;
    names.retain(|n| n != skip_name);
    names.sort();
    Ok(names)
}

/// Lists the differences between `base` and an expectation (empty: equal).
pub(super) fn compare(base: &Path, exp: &Expectation, skip_name: &str) -> io::Result<Vec<String>> {
    Ok(differing(base, exp, skip_name)?
        .into_iter()
        .map(|(_, _, what)| what)
        .collect())
}

/// The paths (relative) where `base` differs from an expectation, each
/// with whether it is the names in that directory that differ, and what.
pub(super) fn differing(
    base: &Path,
    exp: &Expectation,
    skip_name: &str,
) -> io::Result<Vec<(PathBuf, bool, String)>> {
    let mut wrong = Vec::new();
    let entries: Vec<_> = exp.entries.iter().collect();
    let found = entries
        .par_iter()
        .map_init(DirCache::default, |dirs, (rel, _)| dirs.describe(base, rel))
        .collect::<io::Result<Vec<_>>>()?;
    for ((rel, want), got) in entries.into_iter().zip(found) {
        if &got != want {
            wrong.push((
                rel.clone(),
                false,
                format!(
                    "{}: expected {:?}, found {:?}",
                    rel.display(),
                    want.as_ref().map(|d| d.kind),
                    got.as_ref().map(|d| d.kind)
                ),
            ));
        }
    }
    let listings: Vec<_> = exp.listings.iter().collect();
    let found = listings
        .par_iter()
        .map(|(rel, _)| match listing(&base.join(rel), skip_name) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            found => found,
        })
        .collect::<io::Result<Vec<_>>>()?;
    for ((rel, want), names) in listings.into_iter().zip(found) {
        if &names != want {
            wrong.push((
                rel.clone(),
                true,
                format!("{}/: entries differ", rel.display()),
            ));
        }
    }
    if let Some(want) = &exp.links {
        let got = link_groups(base, exp.entries.keys())?;
        // Each group expected and not found, and each found and not
        // expected, named by its first path.
        for group in want.iter().filter(|g| !got.contains(g)) {
            wrong.push((
                group[0].clone(),
                false,
                format!("{}: these names are no longer one inode", names_of(group)),
            ));
        }
        for group in got.iter().filter(|g| !want.contains(g)) {
            wrong.push((
                group[0].clone(),
                false,
                format!("{}: these names became one inode", names_of(group)),
            ));
        }
    }
    Ok(wrong)
}

pub(super) fn names_of(group: &[PathBuf]) -> String {
    group
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" = ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::commit::journal::Meta;

    // Checks: the commit's verification compares link groups, not only
    // entries. Two names of one fifo and of one symlink are captured as
    // groups; when each pair is split into two inodes of identical
    // description (what a commit that rewrote each name would leave), the
    // comparison reports both groups; unsplit, it reports nothing.
    #[test]
    fn verification_compares_link_groups() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        nix::unistd::mkfifo(
            &base.join("p1"),
            nix::sys::stat::Mode::from_bits_truncate(0o644),
        )
        .unwrap();
        fs::hard_link(base.join("p1"), base.join("p2")).unwrap();
        std::os::unix::fs::symlink("p1", base.join("s1")).unwrap();
        fs::hard_link(base.join("s1"), base.join("s2")).unwrap();
        let touched: Vec<PathBuf> = ["p1", "p2", "s1", "s2"].map(PathBuf::from).to_vec();
        let exp = capture(base, &touched, "").unwrap();
        assert_eq!(
            exp.links,
            Some(vec![touched[..2].to_vec(), touched[2..].to_vec()])
        );
        assert_eq!(compare(base, &exp, "").unwrap(), Vec::<String>::new());

        for (name, make) in [
            (
                "p2",
                &(|p: &Path| {
                    nix::unistd::mkfifo(p, nix::sys::stat::Mode::from_bits_truncate(0o644))
                        .map_err(io::Error::from)
                }) as &dyn Fn(&Path) -> io::Result<()>,
            ),
            ("s2", &|p: &Path| std::os::unix::fs::symlink("p1", p)),
        ] {
            let times = Meta::of(&base.join(name)).unwrap();
            fs::remove_file(base.join(name)).unwrap();
            make(&base.join(name)).unwrap();
            times.apply_times(&base.join(name)).unwrap();
        }
        let wrong = compare(base, &exp, "").unwrap();
        assert_eq!(wrong.len(), 2, "{wrong:?}");
        assert!(
            wrong.iter().all(|w| w.contains("no longer one inode")),
            "{wrong:?}"
        );
    }
}
