//! Old run files stay readable (one frozen directory per schema version
//! under `tests/data/schema/`), newer ones are refused by name, and the
//! committed JSON Schemas in `docs/schemas/` match the types.

use std::path::{Path, PathBuf};

use super::published::{PUBLISHED, render};
use crate::model::SCHEMA_VERSION;
use crate::model::migrate::{MigrateError, OLDEST_SCHEMA_VERSION};
use crate::report::load::{LoadError, load_run, parse_run};
use reaper_model::golden::check_golden;

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The frozen run files of one schema version.
fn frozen(version: u32) -> Vec<PathBuf> {
    let dir = crate_dir().join(format!("tests/data/schema/v{version}"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "{}: no frozen run files for schema version {version} ({e}); copy a run.json written by that version there",
                dir.display()
            )
        })
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{}: no run files", dir.display());
    files
}

fn read_value(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn every_schema_version_has_frozen_run_files_that_load() {
    for version in OLDEST_SCHEMA_VERSION..=SCHEMA_VERSION {
        for path in frozen(version) {
            let raw = read_value(&path);
            assert_eq!(raw["schema_version"], version, "{}", path.display());
            let run = load_run(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(run.schema_version, SCHEMA_VERSION);
            assert!(!run.episodes.is_empty(), "{}", path.display());
            assert!(
                run.episodes.iter().any(|e| !e.contexts.is_empty()),
                "{}: no context survived the upgrade",
                path.display()
            );
        }
    }
}

/// A run file of the current version loses nothing on a load/save cycle:
/// every field it holds is a field of the model (an absent optional field
/// may come back as null).
#[test]
fn current_version_files_round_trip_unchanged() {
    for path in frozen(SCHEMA_VERSION) {
        let raw = read_value(&path);
        let run = load_run(&path).unwrap();
        let saved = serde_json::to_value(&run).unwrap();
        if let Some(at) = first_difference(&raw, &saved, String::new()) {
            panic!("{}: a load/save cycle changes {at}", path.display());
        }
    }
}

/// The JSON path of the first difference between two values.
fn first_difference(a: &serde_json::Value, b: &serde_json::Value, at: String) -> Option<String> {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            x.keys()
                .chain(y.keys())
                .find_map(|k| match (x.get(k), y.get(k)) {
                    (Some(p), Some(q)) => first_difference(p, q, format!("{at}/{k}")),
                    // An absent optional field reads as null.
                    (Some(Value::Null), None) | (None, Some(Value::Null)) => None,
                    _ => Some(format!("{at}/{k} (present on one side only)")),
                })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (p, q))| first_difference(p, q, format!("{at}/{i}"))),
        _ if a == b => None,
        _ => Some(format!("{at} ({a} vs {b})")),
    }
}

#[test]
fn newer_versions_are_refused_naming_the_version_needed() {
    let path = &frozen(SCHEMA_VERSION)[0];
    let mut raw = read_value(path);
    raw["schema_version"] = (SCHEMA_VERSION + 1).into();
    let err = parse_run(&raw.to_string(), path).unwrap_err();
    assert!(
        matches!(err, LoadError::UnknownSchema { found, supported: SCHEMA_VERSION, .. } if found == u64::from(SCHEMA_VERSION) + 1),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains(&format!("reads schema version {}", SCHEMA_VERSION + 1)),
        "{message}"
    );
}

#[test]
fn versions_older_than_any_reaper_wrote_are_refused() {
    let path = &frozen(OLDEST_SCHEMA_VERSION)[0];
    let mut raw = read_value(path);
    raw["schema_version"] = (OLDEST_SCHEMA_VERSION - 1).into();
    let err = parse_run(&raw.to_string(), path).unwrap_err();
    assert!(
        matches!(
            err,
            LoadError::Migrate {
                source: MigrateError::TooOld { .. },
                ..
            }
        ),
        "{err:?}"
    );
}

/// `reaper diff` of the oldest frozen run file against a current one.
#[test]
fn the_oldest_frozen_run_compares_with_a_current_run() {
    let old = crate_dir().join(format!(
        "tests/data/schema/v{OLDEST_SCHEMA_VERSION}/vm-sid-x86_64-function-timing.run.json"
    ));
    let new = crate_dir().join("tests/data/compare/vm-bookworm-x86_64/run.json");
    let pair = crate::compare::load_pair(("old", &old), ("new", &new), false).unwrap();
    let diff = crate::compare::diff::diff(
        &pair.a,
        &pair.b,
        pair.notes,
        &crate::compare::diff::DiffOptions::default(),
    );
    assert!(!diff.metrics.is_empty());
}

#[test]
fn published_schemas_match_the_types() {
    let dir = crate_dir().join("../docs/schemas");
    for published in PUBLISHED {
        check_golden(&dir.join(published.file), &render(&(published.schema)()));
    }
}

#[test]
fn the_run_schema_names_every_top_level_field_of_a_run_file() {
    let schema = serde_json::to_value((PUBLISHED[0].schema)()).unwrap();
    let properties = schema["properties"].as_object().unwrap();
    for path in frozen(SCHEMA_VERSION) {
        for key in read_value(&path).as_object().unwrap().keys() {
            assert!(
                properties.contains_key(key),
                "{key} missing from the run schema"
            );
        }
    }
}
