//! Brendan Gregg's folded stacks: `outer;...;leaf N`, where N is the
//! stack's weighted cpu-clock time in ns, summed over the run's episodes:
//! the same figure as the tables' "Period (ms)" and "Event count" (which
//! show it per episode), not the raw sample count, which under-counts a
//! late timer (see the README: up to 2.5–23× in VMs).
//!
//! One set of lines per context (stacks merged over episodes), and a
//! combined set whose root frame is the context name, so one flame graph
//! shows every context side by side. A frame name is data: it is written
//! through `sanitize::folded_frame`, so no name can add a frame (`;`) or a
//! line.

use crate::model::{Context, Run, SampledStack};

use super::analysis::{contexts_in, merged_stacks};

fn line(prefix: Option<&str>, stack: &SampledStack) -> String {
    format!("{} {}", join_frames(prefix, &stack.frames), stack.period_ns)
}

/// The frames of a folded line, `;`-separated, each escaped.
pub fn join_frames(prefix: Option<&str>, frames: &[String]) -> String {
    let mut out = String::new();
    for (i, frame) in prefix
        .into_iter()
        .chain(frames.iter().map(String::as_str))
        .enumerate()
    {
        if i > 0 {
            out.push(';');
        }
        out.push_str(&crate::sanitize::folded_frame(frame));
    }
    out
}

/// Folded lines of one context, sorted; stacks without samples are left out.
pub fn context_lines(run: &Run, context: Context) -> Vec<String> {
    merged_stacks(run, context)
        .iter()
        .filter(|s| s.period_ns > 0 && !s.frames.is_empty())
        .map(|s| line(None, s))
        .collect()
}

/// Folded lines of every context, each rooted at the context's name.
pub fn combined_lines(run: &Run) -> Vec<String> {
    contexts_in(run)
        .into_iter()
        .flat_map(|context| {
            merged_stacks(run, context)
                .into_iter()
                .filter(|s| s.period_ns > 0)
                .map(move |s| line(Some(context.name()), &s))
        })
        .collect()
}

/// The sum of folded lines' counts (ns): the flame graph's total.
pub fn total(lines: &[String]) -> u64 {
    lines
        .iter()
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<u64>().ok())
        .sum()
}

/// Lines joined into a file's text.
pub fn to_text(lines: &[String]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_format() {
        let s = SampledStack {
            frames: vec!["a".into(), "b".into()],
            samples: 7,
            period_ns: 1,
        };
        assert_eq!(line(None, &s), "a;b 1");
        assert_eq!(line(Some("victim_exit"), &s), "victim_exit;a;b 1");
        assert_eq!(total(&["a;b 5".to_owned(), "a 7".to_owned()]), 12);
        let evil = SampledStack {
            frames: vec!["a;fake".into(), "b\nfake;stack 99".into()],
            samples: 7,
            period_ns: 1,
        };
        assert_eq!(line(None, &evil), "a\\x3bfake;b\\nfake\\x3bstack 99 1");
    }
}
