//! Migration on load: a run file of any earlier schema version is upgraded,
//! one version at a time, to the current [`SCHEMA_VERSION`] before it is
//! decoded; a newer version is refused by the loader, naming what it needs.
//!
//! Each step is a function on the raw JSON from version N to N+1, so a step
//! is written once, when the format changes, and never touched again. The
//! frozen run files under `tests/data/schema/vN/` prove each old version
//! still loads.

use serde_json::Value;

use crate::SCHEMA_VERSION;

/// The oldest run-file schema version reaper ever wrote.
pub const OLDEST_SCHEMA_VERSION: u32 = 1;

/// One upgrade step: the raw run file of version `from` to `from + 1`.
pub struct Step {
    /// The version this step reads.
    pub from: u32,
    /// What changed, for the record (and the schema README).
    pub change: &'static str,
    /// The upgrade itself.
    pub apply: fn(&mut serde_json::Map<String, Value>) -> Result<(), StepError>,
}

/// What an upgrade step found malformed in a file of its version.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    /// A field the version always has is absent.
    #[error("field `{field}` is missing")]
    Missing {
        /// The field's path, e.g. `episodes[].latencies`.
        field: &'static str,
    },
    /// A field holds another JSON type than the version wrote.
    #[error("field `{field}` is not {expected}")]
    WrongType {
        /// The field's path.
        field: &'static str,
        /// The JSON type the version wrote, e.g. "an object".
        expected: &'static str,
    },
}

/// Every step, oldest first: `STEPS[i].from == OLDEST_SCHEMA_VERSION + i`.
/// Version 1 is the current one, so there is no step yet.
pub const STEPS: &[Step] = &[];

// A schema bump without its migration step fails to compile.
const _: () = assert!(OLDEST_SCHEMA_VERSION as usize + STEPS.len() == SCHEMA_VERSION as usize);

/// Why a run file could not be upgraded.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// Older than any version reaper wrote (0, say).
    #[error(
        "schema version {found} is older than any reaper wrote (the first was {OLDEST_SCHEMA_VERSION})"
    )]
    TooOld {
        /// The file's version.
        found: u64,
    },
    /// A step found the file malformed for its version.
    #[error("upgrading from schema version {from} to {}", from + 1)]
    Step {
        /// The version the step reads.
        from: u32,
        /// What the step found.
        #[source]
        why: StepError,
    },
}

/// Checks that a file of schema `version` (at most the current one) can be
/// upgraded, before it is decoded.
pub fn check(version: u64) -> Result<u32, MigrateError> {
    u32::try_from(version)
        .ok()
        .filter(|v| *v >= OLDEST_SCHEMA_VERSION)
        .ok_or(MigrateError::TooOld { found: version })
}

/// Upgrades `run` (a JSON object whose `schema_version` is `version`, at most
/// the current one) to [`SCHEMA_VERSION`] in place, and sets its
/// `schema_version`. Returns the version it was read as.
pub fn upgrade(
    run: &mut serde_json::Map<String, Value>,
    version: u64,
) -> Result<u32, MigrateError> {
    let found = check(version)?;
    for step in STEPS.iter().filter(|s| s.from >= found) {
        (step.apply)(run).map_err(|why| MigrateError::Step {
            from: step.from,
            why,
        })?;
    }
    run.insert("schema_version".to_owned(), Value::from(SCHEMA_VERSION));
    Ok(found)
}
/// Why [`read_run`] refused a run file's text.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Not JSON, or not an object.
    #[error("not a JSON object")]
    NotAnObject(#[source] serde_json::Error),
    /// No numeric `schema_version`.
    #[error("no schema_version: not a reaper run file")]
    NoVersion,
    /// Written by a newer reaper.
    #[error("schema version {found} is newer than this reaper reads ({SCHEMA_VERSION})")]
    TooNew {
        /// The file's version.
        found: u64,
    },
    /// An older version that could not be upgraded.
    #[error(transparent)]
    Migrate(#[from] MigrateError),
    /// The (upgraded) JSON is not a run as this build writes it.
    #[error("not a run file as this build of reaper writes it")]
    NotARun(#[source] serde_json::Error),
}

/// Reads a run file's text the way reaper does: refuses a newer schema,
/// upgrades an older one step by step, then decodes it with the run's own
/// types (value checks included). For readers of reaper's own files
/// (xtask, reaper-lab) that need no streaming size guard.
pub fn read_run(text: &str) -> Result<crate::Run, ReadError> {
    let mut raw: serde_json::Map<String, Value> =
        serde_json::from_str(text).map_err(ReadError::NotAnObject)?;
    let version = raw
        .get("schema_version")
        .and_then(Value::as_u64)
        .ok_or(ReadError::NoVersion)?;
    if version > u64::from(SCHEMA_VERSION) {
        return Err(ReadError::TooNew { found: version });
    }
    if version < u64::from(SCHEMA_VERSION) {
        upgrade(&mut raw, version)?;
    }
    serde_json::from_value(Value::Object(raw)).map_err(ReadError::NotARun)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frozen v1 run file (reaper-cli's schema fixtures).
    fn v1() -> String {
        std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../reaper-cli/tests/data/schema/v1/host-6.18-mrelease.run.json"
        ))
        .unwrap()
    }

    #[test]
    fn read_run_decodes_a_current_file_and_refuses_newer_and_unversioned_ones() {
        let text = v1();
        let run = read_run(&text).unwrap();
        assert!(!run.episodes.is_empty());
        let mut raw: serde_json::Map<String, Value> = serde_json::from_str(&text).unwrap();
        raw.insert("schema_version".into(), Value::from(SCHEMA_VERSION + 1));
        let newer = serde_json::to_string(&raw).unwrap();
        assert!(matches!(read_run(&newer), Err(ReadError::TooNew { .. })));
        raw.remove("schema_version");
        let bare = serde_json::to_string(&raw).unwrap();
        assert!(matches!(read_run(&bare), Err(ReadError::NoVersion)));
        raw.insert("schema_version".into(), Value::from(0));
        let ancient = serde_json::to_string(&raw).unwrap();
        assert!(matches!(
            read_run(&ancient),
            Err(ReadError::Migrate(MigrateError::TooOld { found: 0 }))
        ));
        assert!(matches!(read_run("[1]"), Err(ReadError::NotAnObject(_))));
    }
}
