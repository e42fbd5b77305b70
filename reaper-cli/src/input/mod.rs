//! Reading untrusted input within a budget: run files and calibration files
//! come from CI artifacts and shared directories, so every read is
//! - opened without side effects and only if it is a regular file
//!   ([`open`]);
//! - bounded, per command, in bytes and episodes by `--max-input`, and in
//!   memory by the bytes read ([`budget`]);
//! - decoded in one pass straight into the typed model (a file up to
//!   16 MiB from memory, a larger one streamed) through [`guard`], which
//!   escapes every string, bounds every amount and charges every
//!   allocation, so the decoded runs never take more than 3× the bytes read
//!   (`tests/bounded_reading.rs` measures it; README, "Files reaper writes,
//!   and files it reads", gives the figures).

pub mod budget;
pub mod guard;
pub mod open;

use std::io::{BufReader, Read};

pub use budget::{Budget, Exceeded, MaxInput};

/// The reader's buffer: large enough that the parser, which pulls one byte
/// at a time, rarely reaches the kernel.
const READ_BUFFER: usize = 256 << 10;

/// Why a decode failed.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The OS refused a read.
    #[error("cannot read it")]
    Read(#[source] std::io::Error),
    /// Not JSON, or cut short.
    #[error("truncated or corrupt JSON at line {} column {}", .0.line(), .0.column())]
    Corrupt(#[source] serde_json::Error),
    /// JSON, but not of the expected shape.
    #[error("{0}")]
    Invalid(#[source] serde_json::Error),
    /// The guard stopped it.
    #[error("{0}")]
    Stopped(guard::Stop),
}

impl DecodeError {
    fn from_json(e: serde_json::Error, stop: Option<guard::Stop>) -> Self {
        if let Some(stop) = stop {
            return Self::Stopped(stop);
        }
        match e.classify() {
            serde_json::error::Category::Io => Self::Read(e.into()),
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                Self::Corrupt(e)
            }
            serde_json::error::Category::Data => Self::Invalid(e),
        }
    }
}

/// Decodes one JSON document of type `T` from `reader` through the guard,
/// charging `budget` (whose bytes the caller has charged for the file);
/// anything after the document but blanks is an error.
pub fn decode<T: serde::de::DeserializeOwned>(
    reader: impl Read,
    budget: &Budget,
) -> Result<T, DecodeError> {
    let mut de =
        serde_json::Deserializer::from_reader(BufReader::with_capacity(READ_BUFFER, reader));
    let value =
        guard::decode(&mut de, budget).map_err(|(e, stop)| DecodeError::from_json(e, stop))?;
    de.end().map_err(|e| DecodeError::from_json(e, None))?;
    Ok(value)
}

/// [`decode`] from bytes already read (a small file is read whole: the
/// parser is several times faster on a slice than on a reader).
pub fn decode_slice<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    budget: &Budget,
) -> Result<T, DecodeError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value =
        guard::decode(&mut de, budget).map_err(|(e, stop)| DecodeError::from_json(e, stop))?;
    de.end().map_err(|e| DecodeError::from_json(e, None))?;
    Ok(value)
}

/// Runs `seed` with serde_json alone, no guard: for a first look at a few
/// top-level fields through a visitor that stores nothing and may stop
/// early (see `report::load::Header`). What follows is not checked.
pub fn peek<'de, S: serde::de::DeserializeSeed<'de>>(
    reader: impl Read,
    seed: S,
) -> Result<S::Value, DecodeError> {
    let mut de =
        serde_json::Deserializer::from_reader(BufReader::with_capacity(READ_BUFFER, reader));
    seed.deserialize(&mut de)
        .map_err(|e| DecodeError::from_json(e, None))
}

/// [`peek`] on bytes already read.
pub fn peek_slice<'de, S: serde::de::DeserializeSeed<'de>>(
    bytes: &'de [u8],
    seed: S,
) -> Result<S::Value, DecodeError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    seed.deserialize(&mut de)
        .map_err(|e| DecodeError::from_json(e, None))
}
