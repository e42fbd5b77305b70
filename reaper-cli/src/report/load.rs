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
//! is decoded as JSON, upgraded (`crate::model::migrate`), then decoded.

use std::cell::Cell;
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
    /// Not a regular file (a FIFO, a device, a socket, a directory where
    /// the file should be): refused before anything is read from it.
    #[error("{}: {kind}, not a regular file; not a reaper run file", path.display())]
    NotRegular {
        /// The path.
        path: PathBuf,
        /// What it is instead ("a FIFO", "a character device", ...).
        kind: &'static str,
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
    #[error("{}", path.display())]
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
        source: crate::model::migrate::MigrateError,
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

/// Reads a [`Header`] into its cell, stopping as soon as both keys are
/// seen (reaper writes them first, before the episodes): the rest of the
/// file is checked by the decode that follows. Stopping is an error for
/// serde, told apart by the cell being filled.
struct HeaderSeed<'a>(&'a Cell<Option<Header>>);

impl<'de> de::DeserializeSeed<'de> for HeaderSeed<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for HeaderSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut header = Header::default();
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::SchemaVersion => header.version = Some(map.next_value()?),
                Key::Episodes => header.has_episodes = true,
                Key::Other => {}
            }
            if header.looks_like_run() {
                self.0.set(Some(header));
                return Err(de::Error::custom("header read"));
            }
            if !matches!(key, Key::SchemaVersion) {
                map.next_value::<IgnoredAny>()?;
            }
        }
        self.0.set(Some(header));
        Ok(())
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

/// Reads a run file's [`Header`] (the first pass).
pub fn read_header(source: &mut Source, path: &Path) -> Result<Header, LoadError> {
    let cell = Cell::new(None);
    let peeked = match source {
        Source::Bytes(bytes) => crate::input::peek_slice(bytes, HeaderSeed(&cell)),
        Source::File(file, size) => {
            let peeked = crate::input::peek((&mut *file).take(*size), HeaderSeed(&cell));
            file.rewind().map_err(|e| LoadError::read(path, e))?;
            peeked
        }
    };
    match (peeked, cell.take()) {
        (_, Some(header)) => Ok(header),
        (Err(DecodeError::Invalid(_)), None) => {
            Err(LoadError::not_a_run(path, "not a JSON object"))
        }
        (Err(e), None) => Err(LoadError::decode(path, e)),
        (Ok(()), None) => Err(LoadError::not_a_run(path, "not a JSON object")),
    }
}

/// Files up to this size are read whole and parsed from memory (several
/// times faster); larger ones are streamed, so the copy never costs more
/// than this.
const READ_WHOLE: u64 = 16 << 20;

/// A run file's bytes: read whole, or an open file to stream.
#[derive(Debug)]
pub enum Source {
    /// Read whole.
    Bytes(Vec<u8>),
    /// Streamed; at most this many bytes are read.
    File(File, u64),
}

impl Source {
    /// Reads `file` (of `size` bytes, as checked) whole when it is small.
    pub fn of(mut file: File, size: u64, path: &Path) -> Result<Self, LoadError> {
        if size > READ_WHOLE {
            return Ok(Self::File(file, size));
        }
        let mut bytes = Vec::with_capacity(size as usize);
        (&mut file)
            .take(size)
            .read_to_end(&mut bytes)
            .map_err(|e| LoadError::read(path, e))?;
        Ok(Self::Bytes(bytes))
    }
}

/// Resolves a run path: a file as is, a directory to its `run.json` (never
/// through a symlink), checked before anything is read.
fn open_run(path: &Path) -> Result<(File, Identity, PathBuf), LoadError> {
    let not_regular = |path: &Path, kind| LoadError::NotRegular {
        path: path.to_owned(),
        kind: open::describe(kind),
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
    let (file, id, path) = open_run(path)?;
    let (mut source, header) = read_checked_header(file, id, &path, budget)?;
    let version = header.schema_version(&path)?;
    if !header.has_episodes {
        return Err(LoadError::not_a_run(&path, "no episodes field"));
    }
    decode_run(&mut source, version, &path, budget)
}

/// Checks a file's size against the run-file limit and the budget (charging
/// it), reads it (whole if small), and reads its [`Header`].
pub fn read_checked_header(
    file: File,
    id: Identity,
    path: &Path,
    budget: &Budget,
) -> Result<(Source, Header), LoadError> {
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
    let mut source = Source::of(file, id.size, path)?;
    let header = read_header(&mut source, path)?;
    Ok((source, header))
}

/// Decodes `T` from a source through the guard.
fn decode_source<T: serde::de::DeserializeOwned>(
    source: &mut Source,
    path: &Path,
    budget: &Budget,
) -> Result<T, LoadError> {
    match source {
        Source::Bytes(bytes) => crate::input::decode_slice(bytes, budget),
        Source::File(file, size) => crate::input::decode((&mut *file).take(*size), budget),
    }
    .map_err(|e| LoadError::decode(path, e))
}

/// Decodes a run file of schema `version` (the second pass), through the
/// guard; refuses a newer schema, upgrades an older one.
pub fn decode_run(
    source: &mut Source,
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
        decode_source(source, path, budget)?
    } else {
        let migrate = |source| LoadError::Migrate {
            path: path.to_owned(),
            source,
        };
        crate::model::migrate::check(version).map_err(migrate)?;
        let mut raw: serde_json::Map<String, serde_json::Value> =
            decode_source(source, path, budget)?;
        crate::model::migrate::upgrade(&mut raw, version).map_err(migrate)?;
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
    let mut source = Source::Bytes(json.to_vec());
    decode_run(&mut source, u64::from(SCHEMA_VERSION), path, &budget)
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
    let mut source = Source::Bytes(text.as_bytes().to_vec());
    let header = read_header(&mut source, path)?;
    let version = header.schema_version(path)?;
    if !header.has_episodes {
        return Err(LoadError::not_a_run(path, "no episodes field"));
    }
    decode_run(&mut source, version, path, &budget)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(text: &[u8]) -> Result<Header, LoadError> {
        read_header(&mut Source::Bytes(text.to_vec()), Path::new("f"))
    }

    #[test]
    fn header_looks_only_at_two_top_level_keys() {
        let h =
            header(br#"{"x": {"schema_version": "no"}, "episodes": [1, 2], "schema_version": 3}"#)
                .unwrap();
        assert_eq!(h.version, Some(Version::Number(3)));
        assert!(h.looks_like_run());
        let h = header(br#"{"schema_version": [1]}"#).unwrap();
        assert_eq!(h.version, Some(Version::NotANumber));
        assert!(!h.looks_like_run());
        // It stops once both keys are seen: the rest is the decode's.
        let h = header(br#"{"schema_version": 1, "episodes": [ x x"#).unwrap();
        assert!(h.looks_like_run());
        // A struct may not be given as an array.
        for bad in [&b"[1, []]"[..], b"{\"a\": ", b"x"] {
            assert!(header(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
