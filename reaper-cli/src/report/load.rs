//! Loading a run file, with an error that says what is wrong with it.
//!
//! The file is parsed in two steps: first as any JSON value (so a truncated
//! or corrupt file is told apart from a valid file of the wrong kind), then
//! its `schema_version` is checked before the full [`Run`] is decoded: an
//! earlier version is upgraded first (`crate::schema::migrate`), a newer one
//! is refused with the version it needs.

use std::path::{Path, PathBuf};

use crate::model::{Run, SCHEMA_VERSION};

/// The name `reaper record -o DIR` gives the run file.
pub const RUN_FILE_NAME: &str = "run.json";

/// Why a run file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The path does not exist (or a directory has no run.json).
    #[error("{}: no such run file; pass a run.json written by `reaper record -o DIR`, or its directory", path.display())]
    Missing {
        /// The path looked at.
        path: PathBuf,
    },
    /// The file exists but could not be read.
    #[error("{}: cannot read the run file", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Not JSON, or cut short.
    #[error("{}: truncated or corrupt JSON at line {line} column {column}; the recording may have been interrupted before the file was complete", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// Valid JSON, but not a reaper run file.
    #[error("{}: valid JSON but not a reaper run file ({what})", path.display())]
    NotARun {
        /// The file.
        path: PathBuf,
        /// What is missing or wrong.
        what: String,
    },
    /// A run file of a newer schema than this build reads.
    #[error("{}: run file schema version {found} is newer than this build of reaper, which reads version {supported} and older; read it with a reaper that reads schema version {found} (the version that recorded it, or later)", path.display())]
    UnknownSchema {
        /// The file.
        path: PathBuf,
        /// The file's `schema_version`.
        found: u64,
        /// [`SCHEMA_VERSION`].
        supported: u32,
    },
    /// An earlier schema version that could not be upgraded.
    #[error("{}: cannot read this run file", path.display())]
    Migrate {
        /// The file.
        path: PathBuf,
        /// What the upgrade found.
        #[source]
        source: crate::schema::migrate::MigrateError,
    },
}

/// Resolves a run path: a file as is, a directory to its `run.json`.
pub fn run_file_path(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join(RUN_FILE_NAME)
    } else {
        path.to_owned()
    }
}

/// Loads a run file (or the `run.json` in a directory).
pub fn load_run(path: &Path) -> Result<Run, LoadError> {
    let path = run_file_path(path);
    let text = std::fs::read_to_string(&path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            LoadError::Missing { path: path.clone() }
        } else {
            LoadError::Read {
                path: path.clone(),
                source,
            }
        }
    })?;
    parse_run(&text, &path)
}

/// Parses run-file text; `path` is only used in errors.
pub fn parse_run(text: &str, path: &Path) -> Result<Run, LoadError> {
    let mut value: serde_json::Value =
        serde_json::from_str(text).map_err(|source| LoadError::Corrupt {
            path: path.to_owned(),
            line: source.line(),
            column: source.column(),
            source,
        })?;
    let version = schema_version_of(&value, path)?;
    if version > u64::from(SCHEMA_VERSION) {
        return Err(LoadError::UnknownSchema {
            path: path.to_owned(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    upgrade_older(&mut value, path)?;
    serde_json::from_value(value).map_err(|e| LoadError::NotARun {
        path: path.to_owned(),
        what: e.to_string(),
    })
}

/// A raw run file's `schema_version`.
fn schema_version_of(value: &serde_json::Value, path: &Path) -> Result<u64, LoadError> {
    let not_a_run = |what: &str| LoadError::NotARun {
        path: path.to_owned(),
        what: what.to_owned(),
    };
    value
        .as_object()
        .ok_or_else(|| not_a_run("not a JSON object"))?
        .get("schema_version")
        .ok_or_else(|| not_a_run("no schema_version field"))?
        .as_u64()
        .ok_or_else(|| not_a_run("schema_version is not a number"))
}

/// Upgrades a raw run file of an earlier schema version to the current one
/// in place. The current and newer versions are left as they are (a newer
/// one is refused when decoded, or reported as incomparable by `diff`).
pub fn upgrade_older(value: &mut serde_json::Value, path: &Path) -> Result<(), LoadError> {
    let version = schema_version_of(value, path)?;
    if version >= u64::from(SCHEMA_VERSION) {
        return Ok(());
    }
    let object = value.as_object_mut().expect("checked by schema_version_of");
    crate::schema::migrate::upgrade(object, version).map_err(|source| LoadError::Migrate {
        path: path.to_owned(),
        source,
    })?;
    Ok(())
}
