//! An error and its causes as one line of text: how reaper words an error
//! it met wherever the error has to become text (doctor.json's
//! [`crate::doctor::Unavailable`], a probe's [`crate::ProbeOutcome`], log
//! lines). One function, so doctor and record word the same error alike.

use std::error::Error;

/// `err` followed by each of its sources, joined with ": ", e.g.
/// "perf_event_open failed: Permission denied". A cause whose text the line
/// already holds is left out: aya's and thiserror's messages often repeat
/// their source, and a cause is said once.
pub fn error_chain(err: &(dyn Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{what}")]
    struct Layer {
        what: &'static str,
        #[source]
        cause: Option<Box<Layer>>,
    }

    fn layer(what: &'static str, cause: Option<Layer>) -> Layer {
        Layer {
            what,
            cause: cause.map(Box::new),
        }
    }

    #[test]
    fn each_cause_is_said_once_in_order() {
        let denied = layer("Permission denied", None);
        let open = layer("perf_event_open failed", Some(denied));
        assert_eq!(
            error_chain(&open),
            "perf_event_open failed: Permission denied"
        );
        // A message that already quotes its cause does not get it twice.
        let quoted = layer(
            "load: Permission denied",
            Some(layer("Permission denied", None)),
        );
        assert_eq!(error_chain(&quoted), "load: Permission denied");
        assert_eq!(error_chain(&layer("alone", None)), "alone");
    }
}
