//! Loading a run file, with an error that says what is wrong with it.
//!
//! The file is parsed in two steps: first as any JSON value (so a truncated
//! or corrupt file is told apart from a valid file of the wrong kind), then
//! its `schema_version` is checked before the full [`Run`] is decoded: an
//! earlier version is upgraded first (`crate::schema::migrate`), a newer one
//! is refused with the version it needs.

use std::path::{Path, PathBuf};

use crate::model::{Run, SCHEMA_VERSION};

use super::validate::{MAX_RUN_FILE_BYTES, check_amounts};

/// The name `reaper record -o DIR` gives the run file.
pub const RUN_FILE_NAME: &str = "run.json";
/// What `reaper record -o DIR` renames an earlier run.json in DIR to (as
/// perf keeps `perf.data.old`); not `*.json`, so `diff DIR` skips it.
pub const PREVIOUS_RUN_FILE_NAME: &str = "run.json.old";

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
    /// Larger than any run reaper writes.
    #[error("{}: {size} bytes, larger than any reaper run file (limit {limit} bytes); not a reaper run file", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// [`MAX_RUN_FILE_BYTES`].
        limit: u64,
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
    let text = read_run_text(&path)?;
    parse_run(&text, &path)
}

/// Reads a run file's text: a regular file of at most
/// [`MAX_RUN_FILE_BYTES`], checked before it is read (a FIFO or a device is
/// refused, not waited on).
pub fn read_run_text(path: &Path) -> Result<String, LoadError> {
    use std::io::Read as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let read_error = |source: std::io::Error| {
        if source.kind() == std::io::ErrorKind::NotFound {
            LoadError::Missing {
                path: path.to_owned(),
            }
        } else {
            LoadError::Read {
                path: path.to_owned(),
                source,
            }
        }
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(read_error)?;
    let meta = file.metadata().map_err(read_error)?;
    if !meta.is_file() {
        return Err(LoadError::NotARun {
            path: path.to_owned(),
            what: "not a regular file".to_owned(),
        });
    }
    let too_large = |size| LoadError::TooLarge {
        path: path.to_owned(),
        size,
        limit: MAX_RUN_FILE_BYTES,
    };
    if meta.len() > MAX_RUN_FILE_BYTES {
        return Err(too_large(meta.len()));
    }
    let mut text = String::new();
    file.take(MAX_RUN_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(read_error)?;
    if text.len() as u64 > MAX_RUN_FILE_BYTES {
        return Err(too_large(text.len() as u64));
    }
    Ok(text)
}

/// Parses run-file text; `path` is only used in errors.
pub fn parse_run(text: &str, path: &Path) -> Result<Run, LoadError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|source| LoadError::Corrupt {
            path: path.to_owned(),
            line: source.line(),
            column: source.column(),
            source,
        })?;
    run_from_json(value, path)
}

/// Decodes a run file already parsed as JSON (consuming it); `path` is only
/// used in errors.
pub fn run_from_json(mut value: serde_json::Value, path: &Path) -> Result<Run, LoadError> {
    let version = schema_version_of(&value, path)?;
    if version > u64::from(SCHEMA_VERSION) {
        return Err(LoadError::UnknownSchema {
            path: path.to_owned(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    upgrade_older(&mut value, path)?;
    let not_a_run = |what: &str| LoadError::NotARun {
        path: path.to_owned(),
        what: what.to_owned(),
    };
    check_amounts(&value).map_err(|what| not_a_run(&what))?;
    // A context, attach mode or VMA order outside reaper's vocabulary is
    // refused here by its type, with the field and the values reaper writes.
    serde_json::from_value(value).map_err(|e| not_a_run(&e.to_string()))
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
