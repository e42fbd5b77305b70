//! How much one command may read: `--max-input SIZE[,episodes=N]`, the bytes
//! of run files (every `*.json` read, runs or not) and the episodes decoded,
//! over everything the command reads (both sides of a diff, every A/A set of
//! a calibration). The decoded model may take at most [`MEMORY_PER_BYTE`]
//! times the bytes read (plus [`MEMORY_SLACK`]), so a file shaped to
//! amplify (a million empty strings, padding of zeros) is refused as it is
//! decoded instead of exhausting memory.

use std::cell::Cell;

use crate::size::{format_size, parse_size};

/// Default bytes read per command: about 240 run files of 534 KB (a
/// 10-episode host run), far more than a gate needs, and at the decoder's
/// rate (README) a few seconds of work.
pub const DEFAULT_MAX_BYTES: u64 = 128 << 20;
/// Default episodes decoded per command: ten `record --runs 1000` files.
pub const DEFAULT_MAX_EPISODES: u64 = 10_000;
/// Bytes of decoded model allowed per byte read. Real run files decode to
/// 0.5–2.3× their size (pretty-printed to minified, measured on the fixtures
/// in `tests/data`); 3 leaves room and keeps peak memory a small multiple of
/// the input.
pub const MEMORY_PER_BYTE: u64 = 3;
/// Model bytes allowed before any byte counts: the first structures of a
/// file decode before its bulk.
pub const MEMORY_SLACK: u64 = 16 << 20;

/// The `--max-input` setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxInput {
    /// Bytes of JSON read.
    pub bytes: u64,
    /// Episodes decoded.
    pub episodes: u64,
}

impl Default for MaxInput {
    fn default() -> Self {
        Self {
            bytes: DEFAULT_MAX_BYTES,
            episodes: DEFAULT_MAX_EPISODES,
        }
    }
}

impl std::fmt::Display for MaxInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{},episodes={}", format_size(self.bytes), self.episodes)
    }
}

/// A `--max-input` value that is not `SIZE[,episodes=N]`.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum MaxInputError {
    /// The size is not one.
    #[error(transparent)]
    Size(#[from] crate::size::SpecError),
    /// `episodes=` is not a positive whole number.
    #[error("episodes={raw:?} is not a positive whole number")]
    Episodes {
        /// The value after `episodes=`.
        raw: String,
    },
    /// A part that is neither the size nor `episodes=N`.
    #[error("{part:?}: expected SIZE[,episodes=N], e.g. 512M or 2G,episodes=50000")]
    Unknown {
        /// The part as given.
        part: String,
    },
}

impl std::str::FromStr for MaxInput {
    type Err = MaxInputError;

    /// `SIZE[,episodes=N]`, e.g. `512M` or `2G,episodes=50000`.
    fn from_str(raw: &str) -> Result<Self, MaxInputError> {
        let mut parts = raw.split(',');
        let size = parts.next().unwrap_or_default();
        let bytes = parse_size(size)?;
        let mut max = Self {
            bytes,
            ..Self::default()
        };
        for part in parts {
            match part.split_once('=') {
                Some(("episodes", n)) => {
                    max.episodes = n
                        .parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| MaxInputError::Episodes { raw: n.to_owned() })?;
                }
                _ => {
                    return Err(MaxInputError::Unknown {
                        part: part.to_owned(),
                    });
                }
            }
        }
        Ok(max)
    }
}

/// Bytes for people: `2.0 GiB`, `534.2 KiB`, `12 bytes`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (unit, name) in UNITS {
        if bytes >= unit {
            return format!("{:.1} {name}", bytes as f64 / unit as f64);
        }
    }
    format!("{bytes} bytes")
}

/// A limit reached.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Exceeded {
    /// More input than `--max-input` allows.
    #[error(
        "{needed} to read, more than --max-input allows ({limit}); pass a larger --max-input SIZE[,episodes=N] to read them (memory use stays under {MEMORY_PER_BYTE}× the bytes read; README, \"Files reaper writes, and files it reads\")"
    )]
    Input {
        /// What reading would take, e.g. "2.0 GiB of run files (2159460000 bytes)".
        needed: String,
        /// The limit, as given.
        limit: MaxInput,
    },
    /// The decoded form outgrows the bytes read: a file shaped to amplify.
    #[error(
        "its decoded form would take more than {MEMORY_PER_BYTE}× the bytes read (over {} of memory for {} of run files): padding or amplification, not a reaper run file", human_size(*memory), human_size(*bytes)
    )]
    Memory {
        /// Model bytes when it stopped.
        memory: u64,
        /// Bytes read until then.
        bytes: u64,
    },
}

/// The running totals of one command against its [`MaxInput`].
#[derive(Debug, Default)]
pub struct Budget {
    max: MaxInput,
    bytes: Cell<u64>,
    episodes: Cell<u64>,
    memory: Cell<u64>,
}

impl Budget {
    /// A fresh budget.
    pub fn new(max: MaxInput) -> Self {
        Self {
            max,
            ..Self::default()
        }
    }

    /// No limit at all: for reaper's own data read back (a run it just
    /// recorded), never for a file.
    pub fn unlimited() -> Self {
        Self {
            max: MaxInput {
                bytes: u64::MAX,
                episodes: u64::MAX,
            },
            bytes: Cell::new(u64::MAX / MEMORY_PER_BYTE),
            ..Self::default()
        }
    }

    /// The limits.
    pub fn max(&self) -> MaxInput {
        self.max
    }

    /// Bytes charged so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.get()
    }

    /// Checks, without charging, that `bytes` more would fit (a directory's
    /// total, before any file is read).
    pub fn check_bytes(&self, bytes: u64) -> Result<(), Exceeded> {
        let total = self.bytes.get().saturating_add(bytes);
        if total > self.max.bytes {
            return Err(Exceeded::Input {
                needed: format!("{} of run files ({total} bytes)", human_size(total)),
                limit: self.max,
            });
        }
        Ok(())
    }

    /// Charges a file's bytes before it is read.
    pub fn charge_bytes(&self, bytes: u64) -> Result<(), Exceeded> {
        self.check_bytes(bytes)?;
        self.bytes.set(self.bytes.get() + bytes);
        Ok(())
    }

    /// Charges decoded episodes.
    pub fn charge_episodes(&self, episodes: u64) -> Result<(), Exceeded> {
        let total = self.episodes.get().saturating_add(episodes);
        if total > self.max.episodes {
            return Err(Exceeded::Input {
                needed: format!("{total} episodes"),
                limit: self.max,
            });
        }
        self.episodes.set(total);
        Ok(())
    }

    /// Charges decoded model memory; refused past [`MEMORY_PER_BYTE`] times
    /// the bytes charged, plus [`MEMORY_SLACK`].
    pub fn charge_memory(&self, bytes: u64) -> Result<(), Exceeded> {
        let total = self.memory.get().saturating_add(bytes);
        self.memory.set(total);
        self.check_memory(total)
    }

    /// Checks that `bytes` more, held only for a moment (the old buffer of
    /// a growing Vec), would still fit; nothing is charged.
    pub fn check_transient(&self, bytes: u64) -> Result<(), Exceeded> {
        self.check_memory(self.memory.get().saturating_add(bytes))
    }

    fn check_memory(&self, total: u64) -> Result<(), Exceeded> {
        let allowed = self
            .bytes
            .get()
            .saturating_mul(MEMORY_PER_BYTE)
            .saturating_add(MEMORY_SLACK);
        if total > allowed {
            return Err(Exceeded::Memory {
                memory: total,
                bytes: self.bytes.get(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_input_parses_size_and_episodes() {
        assert_eq!("512M".parse::<MaxInput>().unwrap().bytes, 512 << 20);
        let max: MaxInput = "2G,episodes=50000".parse().unwrap();
        assert_eq!((max.bytes, max.episodes), (2 << 30, 50_000));
        assert_eq!(max.to_string(), "2G,episodes=50000");
        for bad in [
            "",
            "x",
            "1G,runs=3",
            "1G,episodes=0",
            "1G,episodes=-1",
            "-1M",
        ] {
            assert!(bad.parse::<MaxInput>().is_err(), "{bad}");
        }
    }

    #[test]
    fn each_limit_is_enforced_and_named() {
        let budget = Budget::new("1K,episodes=3".parse().unwrap());
        budget.charge_bytes(1000).unwrap();
        let err = budget.charge_bytes(100).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("1.1 KiB of run files (1100 bytes) to read, more than --max-input allows (1K,episodes=3)"),
            "{err}"
        );
        assert_eq!(budget.bytes(), 1000, "a refused charge is not counted");
        budget.charge_episodes(3).unwrap();
        assert!(budget.charge_episodes(1).is_err());
        budget.charge_memory(MEMORY_SLACK).unwrap();
        let err = budget.charge_memory(3 * 1000 + 1).unwrap_err();
        assert!(matches!(err, Exceeded::Memory { .. }), "{err}");
    }
}
