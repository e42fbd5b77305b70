//! What a run could not measure (`what` of a `not_measured` entry), typed
//! where a report decides something from it: exact per-function timing as a
//! whole, and the per-call probe cost of one attach mode. Everything else
//! is free text, kept as written.
//!
//! The file holds the text reaper has always written; reading it back gives
//! the same value (and so the same bytes), and the spellings older reapers
//! wrote for function timing are recognised by name, not by prefix.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::AttachMode;

/// The subject of a `not_measured` entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum NotMeasuredSubject {
    /// Exact per-function timing as a whole (no function probe attached).
    FunctionTiming,
    /// The per-call probe cost of one attach mode (its calibration failed).
    ProbeCost(AttachMode),
    /// Anything else, as written.
    Other(String),
}

/// How [`NotMeasuredSubject::FunctionTiming`] is written.
const FUNCTION_TIMING: &str = "exact per-function timing (calls, inclusive ns, histograms)";
/// How runs recorded before the VMA order had its own entry spelled it.
const OLDER_FUNCTION_TIMING: &[&str] =
    &["exact per-function timing (calls, inclusive ns, histograms) and reaper VMA order"];
/// How [`NotMeasuredSubject::ProbeCost`] is written, around the mode's name.
const PROBE_COST: (&str, &str) = ("probe cost (", " per-call calibration)");

impl NotMeasuredSubject {
    /// Reads the file form back (the inverse of `Display` for every value
    /// reaper writes).
    pub fn parse(text: &str) -> Self {
        if text == FUNCTION_TIMING {
            return Self::FunctionTiming;
        }
        let mode = text
            .strip_prefix(PROBE_COST.0)
            .and_then(|rest| rest.strip_suffix(PROBE_COST.1))
            .and_then(|name| AttachMode::ALL.into_iter().find(|m| m.name() == name));
        match mode {
            Some(mode) => Self::ProbeCost(mode),
            None => Self::Other(text.to_owned()),
        }
    }

    /// Whether the entry says exact per-function timing is missing, in this
    /// reaper's spelling or an older one.
    pub fn is_function_timing(&self) -> bool {
        match self {
            Self::FunctionTiming => true,
            Self::Other(text) => OLDER_FUNCTION_TIMING.contains(&text.as_str()),
            Self::ProbeCost(_) => false,
        }
    }
}

impl fmt::Display for NotMeasuredSubject {
    /// The file form: what reaper has always written.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::FunctionTiming => f.pad(FUNCTION_TIMING),
            Self::ProbeCost(mode) => f.pad(&format!("{}{mode}{}", PROBE_COST.0, PROBE_COST.1)),
            Self::Other(text) => f.pad(text),
        }
    }
}

impl From<&str> for NotMeasuredSubject {
    fn from(text: &str) -> Self {
        Self::parse(text)
    }
}

impl From<String> for NotMeasuredSubject {
    fn from(text: String) -> Self {
        Self::parse(&text)
    }
}

impl Serialize for NotMeasuredSubject {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for NotMeasuredSubject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = Cow::<'de, str>::deserialize(d)?;
        Ok(Self::parse(&text))
    }
}

impl schemars::JsonSchema for NotMeasuredSubject {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "NotMeasuredSubject".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        String::json_schema(generator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_keep_their_file_form() {
        for text in [
            "exact per-function timing (calls, inclusive ns, histograms)",
            "exact per-function timing (calls, inclusive ns, histograms) and reaper VMA order",
            "probe cost (fentry per-call calibration)",
            "probe cost (kprobe per-call calibration)",
            "probe cost (uprobe per-call calibration)",
            "reaper VMA order",
            "exact timing of exit_mmap (victim_teardown)",
        ] {
            assert_eq!(NotMeasuredSubject::parse(text).to_string(), text);
            let json = serde_json::to_string(&NotMeasuredSubject::parse(text)).unwrap();
            let back: NotMeasuredSubject = serde_json::from_str(&json).unwrap();
            assert_eq!(back.to_string(), text);
        }
    }

    #[test]
    fn reports_find_subjects_by_type() {
        assert_eq!(
            NotMeasuredSubject::parse("probe cost (kprobe per-call calibration)"),
            NotMeasuredSubject::ProbeCost(AttachMode::Kprobe)
        );
        assert!(NotMeasuredSubject::FunctionTiming.is_function_timing());
        assert!(
            NotMeasuredSubject::parse(
                "exact per-function timing (calls, inclusive ns, histograms) and reaper VMA order"
            )
            .is_function_timing()
        );
        assert!(!NotMeasuredSubject::parse("exact per-function timingX").is_function_timing());
        assert!(!NotMeasuredSubject::parse("reaper VMA order").is_function_timing());
    }
}
