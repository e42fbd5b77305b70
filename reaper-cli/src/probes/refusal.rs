//! The kernel's answer to a program load or attach, as a typed value: which
//! step refused, the errno, and the verifier's reason when the verifier
//! spoke. Decisions (doctor's rows, the attach ladder) read the fields; the
//! one-line text is only for people. The type itself is reaper-model's
//! (doctor.json carries it); reading it out of aya's error is here.

use aya::programs::ProgramError;

use crate::model::error_chain;

pub use reaper_model::doctor::{Refusal, Step, errno_name};

/// Builds a [`Refusal`] from aya's error (the type lives in reaper-model,
/// which knows nothing of aya).
pub trait FromProgramError {
    /// Reads a refusal out of aya's error.
    fn from_error(step: Step, err: &ProgramError) -> Self;
}

impl FromProgramError for Refusal {
    fn from_error(step: Step, err: &ProgramError) -> Self {
        log::debug!("kernel answer in full: {}", error_chain(err));
        let verifier = match err {
            ProgramError::LoadError { verifier_log, .. } => {
                verifier_reason(&verifier_log.to_string())
            }
            _ => None,
        };
        // A transparent io::Error is not in the source chain; read it directly.
        let errno = match err {
            ProgramError::IOError(io) => io.raw_os_error(),
            _ => None,
        }
        .or_else(|| os_error(err));
        let detail = match err {
            ProgramError::LoadError { .. } => "BPF_PROG_LOAD refused".to_owned(),
            other => error_chain(other),
        };
        Self {
            step,
            errno,
            verifier,
            detail,
        }
    }
}

/// The verifier's reason: its log ends with statistics, the reason is the
/// last line before them.
pub fn verifier_reason(log: &str) -> Option<String> {
    log.lines()
        .rev()
        .map(str::trim)
        .find(|l| {
            !l.is_empty()
                && !l.starts_with("processed ")
                && !l.starts_with("verification time")
                && !l.starts_with("stack depth")
        })
        .map(str::to_owned)
}

/// The deepest OS error in an error's chain.
fn os_error(err: &(dyn std::error::Error + 'static)) -> Option<i32> {
    let mut found = None;
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            found = io.raw_os_error().or(found);
        }
        cur = e.source();
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tail of the 6.12 log that refused every function-timing exit
    /// program before the fix (bookworm-backports 6.12, x86_64).
    #[test]
    fn the_verifier_reason_is_the_line_before_the_statistics() {
        let log = "10: (0f) r1 += r2\n\
                   math between map_value pointer and register with unbounded min value is not allowed\n\
                   processed 40 insns (limit 1000000) max_states_per_insn 0 total_states 3\n";
        assert_eq!(
            verifier_reason(log).as_deref(),
            Some(
                "math between map_value pointer and register with unbounded min value is not allowed"
            )
        );
        assert_eq!(verifier_reason("processed 1 insns\n"), None);
    }

    #[test]
    fn errno_names_the_common_answers() {
        let err = ProgramError::IOError(std::io::Error::from_raw_os_error(524));
        let refusal = Refusal::from_error(Step::Load, &err);
        assert_eq!(refusal.errno, Some(524));
        assert!(!refusal.by_verifier());
        assert!(refusal.to_string().ends_with("[ENOTSUPP 524]"), "{refusal}");
    }
}
