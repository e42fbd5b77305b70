//! Loading a run file, with an error that says what is wrong with it.
//!
//! A run file is untrusted input (`crate::input`): it is opened only if it
//! is a regular file, its bytes are charged to the command's budget before
//! it is read, and it is read in two streaming passes. The first looks only
//! at the top-level `schema_version` and `episodes` keys and stores nothing
//! ([`Header`]): a truncated or corrupt file is told apart from a valid file
//! of the wrong kind, and a newer schema is refused with the version it
//! needs before the rest is decoded. The second decodes the typed [`Run`]
//! through the guard. A file of an earlier schema version (none exists yet)
//! is decoded as JSON, upgraded (`crate::schema::migrate`), then decoded.

use std::fs::File;
use std::io::{Read, Seek as _};
use std::path::{Path, PathBuf};

use serde::de::{self, IgnoredAny, MapAccess, Visitor};

use crate::input::open::{self, Identity, Opened};
use crate::input::{Budget, DecodeError, Exceeded};
use crate::model::{Run, SCHEMA_VERSION};

use super::validate::MAX_RUN_FILE_BYTES;

/// The name `reaper record -o DIR` gives the run file.
pub const RUN_FILE_NAME: &str = "run.json";
/// What `reaper record -o DIR` keeps an earlier run.json in DIR as (as perf
/// keeps `perf.data.old`); not `*.json`, so `diff DIR` skips it.
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
    /// More than `--max-input` allows.
    #[error("{}: {source}", path.display())]
    OverBudget {
        /// The file (or set) that did not fit.
        path: PathBuf,
        /// Which limit.
        #[source]
        source: Exceeded,
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

impl LoadError {
    fn not_a_run(path: &Path, what: impl Into<String>) -> Self {
        Self::NotARun {
            path: path.to_owned(),
            what: what.into(),
        }
    }

    fn read(path: &Path, source: std::io::Error) -> Self {
        if source.kind() == std::io::ErrorKind::NotFound {
            Self::Missing {
                path: path.to_owned(),
            }
        } else {
            Self::Read {
                path: path.to_owned(),
                source,
            }
        }
    }

    fn decode(path: &Path, e: DecodeError) -> Self {
        match e {
            DecodeError::Read(source) => Self::read(path, source),
            DecodeError::Corrupt(source) => Self::Corrupt {
                path: path.to_owned(),
                line: source.line(),
                column: source.column(),
                source,
            },
            DecodeError::Invalid(e) => Self::not_a_run(path, e.to_string()),
            DecodeError::Stopped(crate::input::guard::Stop::Budget(source)) => match source {
                Exceeded::Memory { .. } => Self::not_a_run(path, source.to_string()),
                Exceeded::Input { .. } => Self::OverBudget {
                    path: path.to_owned(),
                    source,
                },
            },
            DecodeError::Stopped(stop) => Self::not_a_run(path, stop.to_string()),
        }
    }
}

/// A top-level `schema_version`: a number, or something else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// A non-negative integer.
    Number(u64),
    /// Any other JSON value.
    NotANumber,
}

/// What a run file's first pass sees: only whether the top level is an
/// object with `schema_version` and `episodes`. Nothing else is kept, so
/// the pass costs no memory whatever the file holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Header {
    /// `schema_version`, if present.
    pub version: Option<Version>,
    /// Whether an `episodes` key is present.
    pub has_episodes: bool,
}

impl Header {
    /// Whether this looks like a run file (as opposed to, say, the JSON of
    /// `reaper report --json` or `reaper diff --json` kept beside one).
    pub fn looks_like_run(&self) -> bool {
        self.version.is_some() && self.has_episodes
    }

    /// The schema version, or why there is none.
    pub fn schema_version(&self, path: &Path) -> Result<u64, LoadError> {
        match self.version {
            None => Err(LoadError::not_a_run(path, "no schema_version field")),
            Some(Version::NotANumber) => {
                Err(LoadError::not_a_run(path, "schema_version is not a number"))
            }
            Some(Version::Number(v)) => Ok(v),
        }
    }
}

impl<'de> de::Deserialize<'de> for Version {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Version;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_u64<E>(self, v: u64) -> Result<Version, E> {
                Ok(Version::Number(v))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Version, E> {
                Ok(Version::NotANumber)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Version, E> {
                Ok(Version::NotANumber)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Version, E> {
                Ok(Version::NotANumber)
            }
            fn visit_str<E>(self, _: &str) -> Result<Version, E> {
                Ok(Version::NotANumber)
            }
            fn visit_unit<E>(self) -> Result<Version, E> {
                Ok(Version::NotANumber)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Version, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Version::NotANumber)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Version, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Version::NotANumber)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> de::Deserialize<'de> for Header {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct H;
        impl<'de> Visitor<'de> for H {
            type Value = Header;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Header, A::Error> {
                let mut header = Header::default();
                while let Some(key) = map.next_key::<Key>()? {
                    match key {
                        Key::SchemaVersion => header.version = Some(map.next_value()?),
                        Key::Episodes => {
                            header.has_episodes = true;
                            map.next_value::<IgnoredAny>()?;
                        }
                        Key::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(header)
            }
        }
        d.deserialize_map(H)
    }
}

/// A top-level key, matched without storing it.
enum Key {
    SchemaVersion,
    Episodes,
    Other,
}

impl<'de> de::Deserialize<'de> for Key {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct K;
        impl Visitor<'_> for K {
            type Value = Key;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E>(self, v: &str) -> Result<Key, E> {
                Ok(match v {
                    "schema_version" => Key::SchemaVersion,
                    "episodes" => Key::Episodes,
                    _ => Key::Other,
                })
            }
        }
        d.deserialize_identifier(K)
    }
}

/// Reads a run file's [`Header`] (the first pass) from `reader`.
pub fn read_header(reader: impl Read, path: &Path) -> Result<Header, LoadError> {
    crate::input::peek::<Header>(reader).map_err(|e| match e {
        DecodeError::Invalid(_) => LoadError::not_a_run(path, "not a JSON object"),
        e => LoadError::decode(path, e),
    })
}

/// Resolves a run path: a file as is, a directory to its `run.json` (never
/// through a symlink), checked before anything is read.
fn open_run(path: &Path) -> Result<(File, Identity, PathBuf), LoadError> {
    let not_regular = |path: &Path, kind| {
        LoadError::not_a_run(
            path,
            format!("{}, not a regular file", open::describe(kind)),
        )
    };
    match open::open_path(path, true).map_err(|e| LoadError::read(path, e))? {
        Opened::File(file, id) => Ok((file, id, path.to_owned())),
        Opened::Other(kind) => Err(not_regular(path, kind)),
        Opened::Dir(dir) => {
            let inner = path.join(RUN_FILE_NAME);
            match open::open_in(&dir, Path::new(RUN_FILE_NAME))
                .map_err(|e| LoadError::read(&inner, e))?
            {
                Opened::File(file, id) => Ok((file, id, inner)),
                Opened::Dir(_) => Err(not_regular(&inner, rustix::fs::FileType::Directory)),
                Opened::Other(kind) => Err(not_regular(&inner, kind)),
            }
        }
    }
}

/// Loads a run file (or the `run.json` in a directory) within the default
/// `--max-input`.
pub fn load_run(path: &Path) -> Result<Run, LoadError> {
    load_run_within(path, &Budget::default())
}

/// Loads a run file (or the `run.json` in a directory), charging `budget`.
pub fn load_run_within(path: &Path, budget: &Budget) -> Result<Run, LoadError> {
    let (mut file, id, path) = open_run(path)?;
    let header = read_checked_header(&mut file, id, &path, budget)?;
    let version = header.schema_version(&path)?;
    if !header.has_episodes {
        return Err(LoadError::not_a_run(&path, "no episodes field"));
    }
    file.rewind().map_err(|e| LoadError::read(&path, e))?;
    decode_run((&mut file).take(id.size), version, &path, budget)
}

/// Checks a file's size against the run-file limit and the budget (charging
/// it), then reads its [`Header`].
pub fn read_checked_header(
    file: &mut File,
    id: Identity,
    path: &Path,
    budget: &Budget,
) -> Result<Header, LoadError> {
    if id.size > MAX_RUN_FILE_BYTES {
        return Err(LoadError::TooLarge {
            path: path.to_owned(),
            size: id.size,
            limit: MAX_RUN_FILE_BYTES,
        });
    }
    budget
        .charge_bytes(id.size)
        .map_err(|source| LoadError::OverBudget {
            path: path.to_owned(),
            source,
        })?;
    read_header(file.take(id.size), path)
}

/// Decodes a run file of schema `version` from `reader` (the second pass),
/// through the guard; refuses a newer schema, upgrades an older one.
pub fn decode_run(
    reader: impl Read,
    version: u64,
    path: &Path,
    budget: &Budget,
) -> Result<Run, LoadError> {
    if version > u64::from(SCHEMA_VERSION) {
        return Err(LoadError::UnknownSchema {
            path: path.to_owned(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    let run: Run = if version == u64::from(SCHEMA_VERSION) {
        crate::input::decode(reader, budget).map_err(|e| LoadError::decode(path, e))?
    } else {
        let migrate = |source| LoadError::Migrate {
            path: path.to_owned(),
            source,
        };
        crate::schema::migrate::check(version).map_err(migrate)?;
        let mut raw: serde_json::Map<String, serde_json::Value> =
            crate::input::decode(reader, budget).map_err(|e| LoadError::decode(path, e))?;
        crate::schema::migrate::upgrade(&mut raw, version).map_err(migrate)?;
        let value = serde_json::Value::Object(raw);
        crate::input::guard::decode(value, budget).map_err(|(e, stop)| match stop {
            Some(stop) => LoadError::decode(path, DecodeError::Stopped(stop)),
            None => LoadError::not_a_run(path, e.to_string()),
        })?
    };
    budget
        .charge_episodes(run.episodes.len() as u64)
        .map_err(|source| LoadError::OverBudget {
            path: path.to_owned(),
            source,
        })?;
    Ok(run)
}

/// Reads back a run reaper itself just serialised, through the same guard
/// as any run file (its strings escaped) but with no limit on size: it is
/// reaper's own data, whatever its shape.
pub fn reread(json: &[u8], path: &Path) -> Result<Run, LoadError> {
    let budget = Budget::unlimited();
    decode_run(json, u64::from(SCHEMA_VERSION), path, &budget)
}

/// Parses run-file text held in memory (tests, fuzzing); `path` is only
/// used in errors. The same two passes and guard as a file, within the
/// default budget.
pub fn parse_run(text: &str, path: &Path) -> Result<Run, LoadError> {
    let budget = Budget::default();
    budget
        .charge_bytes(text.len() as u64)
        .map_err(|source| LoadError::OverBudget {
            path: path.to_owned(),
            source,
        })?;
    let header = read_header(text.as_bytes(), path)?;
    let version = header.schema_version(path)?;
    if !header.has_episodes {
        return Err(LoadError::not_a_run(path, "no episodes field"));
    }
    decode_run(text.as_bytes(), version, path, &budget)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_looks_only_at_two_top_level_keys() {
        let h = read_header(
            &br#"{"x": {"schema_version": "no"}, "episodes": [1, 2], "schema_version": 3}"#[..],
            Path::new("f"),
        )
        .unwrap();
        assert_eq!(h.version, Some(Version::Number(3)));
        assert!(h.looks_like_run());
        let h = read_header(&br#"{"schema_version": [1]}"#[..], Path::new("f")).unwrap();
        assert_eq!(h.version, Some(Version::NotANumber));
        assert!(!h.looks_like_run());
        // A struct may not be given as an array, and junk may not follow.
        for bad in [&b"[1, []]"[..], b"{} x", b"{\"a\": "] {
            assert!(read_header(bad, Path::new("f")).is_err());
        }
    }
}
