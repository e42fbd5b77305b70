//! Whether two run sets can be compared at all.
//!
//! Refused: run files of different schema versions (their fields may not
//! mean the same thing), and victims whose size differs by more than
//! [`MAX_SIZE_DIFFERENCE`] (teardown time scales with the memory torn down,
//! so the comparison would measure the size, not the kernel) unless forced.
//! Different kernels, architectures, CPU counts or sampling frequencies are
//! the point of a comparison: they are allowed and shown in the header.

use std::path::{Path, PathBuf};

use crate::model::Run;

use super::load::RunSet;
use super::stats::median;

/// Largest relative victim-size difference compared without `--force`;
/// 10% keeps teardown-time differences from size below the usual 5–10%
/// gate thresholds' noise.
pub const MAX_SIZE_DIFFERENCE: f64 = 0.10;

/// Why two run sets are not comparable.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum Incomparable {
    /// Run files of different schema versions.
    #[error("incomparable runs: {} has run-file schema version {a} but {} has {b}; fields of different schema versions do not mean the same thing, so record both sides with the same reaper version", a_path.display(), b_path.display())]
    Schema {
        /// A file of the first version.
        a_path: PathBuf,
        /// Its version (`None`: no readable schema_version).
        a: SchemaVersion,
        /// A file of the other version.
        b_path: PathBuf,
        /// Its version.
        b: SchemaVersion,
    },
    /// Victims of too different sizes.
    #[error("incomparable runs: victim size {} ({}) differs from {} ({}) by {:.0}%, more than the {:.0}% reaper compares; record both with the same --victim SIZE, or pass --force to compare anyway", format_bytes(*a_bytes), a_path.display(), format_bytes(*b_bytes), b_path.display(), difference * 100.0, MAX_SIZE_DIFFERENCE * 100.0)]
    VictimSize {
        /// A run of the first size.
        a_path: PathBuf,
        /// Its victim size, bytes.
        a_bytes: u64,
        /// A run of the other size.
        b_path: PathBuf,
        /// Its victim size, bytes.
        b_bytes: u64,
        /// |a − b| / min(a, b).
        difference: f64,
    },
}

/// A file's schema version for messages: the number, or "none".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchemaVersion(pub Option<u64>);

impl std::fmt::Display for SchemaVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(v) => write!(f, "{v}"),
            None => f.write_str("none"),
        }
    }
}

/// Checks that every run file of every side (path and schema version, as
/// scanned) has the same schema version.
pub fn check_schema<'a>(
    versions: impl IntoIterator<Item = (&'a Path, Option<u64>)>,
) -> Result<(), Incomparable> {
    let mut all = versions.into_iter();
    let Some((first_path, first)) = all.next() else {
        return Ok(());
    };
    match all.find(|(_, v)| *v != first) {
        None => Ok(()),
        Some((path, v)) => Err(Incomparable::Schema {
            a_path: first_path.to_owned(),
            a: SchemaVersion(first),
            b_path: path.to_owned(),
            b: SchemaVersion(v),
        }),
    }
}

/// The size torn down: the synthetic victim's requested size, else the
/// median RSS of the episodes' victims (an existing process).
pub fn victim_bytes(run: &Run) -> Option<u64> {
    if let Some(bytes) = run.recording.scenario.victim_bytes {
        return Some(bytes);
    }
    let rss: Vec<f64> = run
        .episodes
        .iter()
        .map(|e| e.victim.rss_bytes as f64)
        .collect();
    median(&rss).map(|m| m as u64)
}

fn size_difference(a: u64, b: u64) -> f64 {
    let (lo, hi) = (a.min(b) as f64, a.max(b) as f64);
    if lo <= 0.0 {
        return if hi <= 0.0 { 0.0 } else { f64::INFINITY };
    }
    (hi - lo) / lo
}

/// Checks victim sizes within and across the sets. With `force`, a
/// difference is returned as a header note instead of an error.
pub fn check_sizes(a: &RunSet, b: &RunSet, force: bool) -> Result<Vec<String>, Incomparable> {
    let sized: Vec<(&Path, u64)> = a
        .runs
        .iter()
        .chain(&b.runs)
        .filter_map(|r| victim_bytes(&r.run).map(|s| (r.path.as_path(), s)))
        .collect();
    let mut notes = Vec::new();
    let Some(&(first_path, first)) = sized.first() else {
        return Ok(notes);
    };
    for &(path, bytes) in &sized[1..] {
        let difference = size_difference(first, bytes);
        if difference <= MAX_SIZE_DIFFERENCE {
            continue;
        }
        let err = Incomparable::VictimSize {
            a_path: first_path.to_owned(),
            a_bytes: first,
            b_path: path.to_owned(),
            b_bytes: bytes,
            difference,
        };
        if !force {
            return Err(err);
        }
        notes.push(format!(
            "--force: victim sizes differ ({} vs {}); teardown time scales with size",
            format_bytes(first),
            format_bytes(bytes)
        ));
        break;
    }
    Ok(notes)
}

/// Bytes in the units `--victim` takes (G, M, K), exact when possible.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "G"), (1 << 20, "M"), (1 << 10, "K")];
    for (size, unit) in UNITS {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{}{unit}", bytes / size);
        }
    }
    for (size, unit) in UNITS {
        if bytes >= size {
            return format!("{:.1}{unit}", bytes as f64 / size as f64);
        }
    }
    format!("{bytes}B")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(path: &str, version: Option<u64>) -> (&Path, Option<u64>) {
        (Path::new(path), version)
    }

    #[test]
    fn same_schema_passes_and_different_schema_is_named() {
        assert_eq!(check_schema([raw("a", Some(1)), raw("b", Some(1))]), Ok(()));
        let err =
            check_schema([raw("a", Some(1)), raw("b", Some(1)), raw("c", Some(2))]).unwrap_err();
        assert!(matches!(
            &err,
            Incomparable::Schema { b_path, b: SchemaVersion(Some(2)), .. } if b_path == Path::new("c")
        ));
        let text = err.to_string();
        assert!(
            text.contains("a has run-file schema version 1 but c has 2"),
            "{text}"
        );
        let err = check_schema([raw("a", Some(1)), raw("b", None)]).unwrap_err();
        assert!(err.to_string().contains("but b has none"));
    }

    #[test]
    fn size_difference_is_relative_to_the_smaller() {
        assert_eq!(size_difference(100, 110), 0.1);
        assert_eq!(size_difference(110, 100), 0.1);
        assert!(size_difference(100, 111) > MAX_SIZE_DIFFERENCE);
        assert_eq!(size_difference(0, 0), 0.0);
        assert!(size_difference(0, 1).is_infinite());
    }

    #[test]
    fn bytes_are_printed_like_victim_sizes() {
        assert_eq!(format_bytes(1 << 30), "1G");
        assert_eq!(format_bytes(256 << 20), "256M");
        assert_eq!(format_bytes(1536 << 20), "1536M");
        assert_eq!(format_bytes((1 << 30) + 1), "1.0G");
        assert_eq!(format_bytes(12), "12B");
    }
}
