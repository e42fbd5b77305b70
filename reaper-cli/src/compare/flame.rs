//! Differential flame graphs through inferno's differential mode, one per
//! context and direction.
//!
//! Counts are each side's per-episode mean sampled period in µs, not raw
//! sample counts, so sides with different episode counts or sampling
//! frequencies compare fairly. In `<context>.a-vs-b.diff.svg` the frame
//! widths are B's and red means more time in B than in A, blue less (the
//! regression view when B is the candidate); `<context>.b-vs-a.diff.svg` is
//! the same with the roles swapped, so functions that vanished in B are
//! visible at A's widths.

use std::io::BufReader;
use std::path::PathBuf;

use inferno::differential;
use inferno::flamegraph::{self, Options};

use crate::model::Context;
use crate::output::{OutputDir, OutputError};
use crate::report::stacks::merge_stacks;

use super::clean::{LossPolicy, Scope, exclusion};
use super::functions::{contexts, stacks_of};
use super::load::RunSet;

/// Folded lines of one context: per-episode mean period in µs per stack,
/// over the episodes the sampled scope may use ([`super::clean`]).
pub fn mean_folded(set: &RunSet, context: Context, policy: &LossPolicy) -> Vec<String> {
    let complete: Vec<_> = set
        .runs
        .iter()
        .flat_map(|r| &r.run.episodes)
        .filter(|e| exclusion(e, Scope::Sampled, policy).is_none())
        .collect();
    let n = complete.len().max(1) as u64;
    let stacks: Vec<_> = complete
        .iter()
        .flat_map(|e| stacks_of(e, context))
        .collect();
    merge_stacks(&stacks)
        .into_iter()
        .filter(|s| !s.frames.is_empty())
        .filter_map(|s| {
            // Rounded to the nearest µs; a stack below 0.5 µs per episode is
            // invisible in a flame graph anyway.
            let us = (s.period_ns + n * 500) / (n * 1000);
            (us > 0).then(|| {
                format!(
                    "{} {us}",
                    crate::report::folded::join_frames(None, &s.frames)
                )
            })
        })
        .collect()
}

/// Renders one differential flame graph: widths from `after`, colours from
/// after − before.
pub fn differential_svg(
    before: &[String],
    after: &[String],
    title: &str,
    subtitle: Option<&str>,
) -> std::io::Result<Vec<u8>> {
    // An empty side is no lines at all (a lone "\n" would be a line inferno
    // cannot parse, and warns about).
    let text = |lines: &[String]| {
        if lines.is_empty() {
            String::new()
        } else {
            lines.join("\n") + "\n"
        }
    };
    let (before_text, after_text) = (text(before), text(after));
    let mut diff = Vec::new();
    differential::from_readers(
        differential::Options::default(),
        BufReader::new(before_text.as_bytes()),
        BufReader::new(after_text.as_bytes()),
        &mut diff,
    )?;
    let mut options = Options::default();
    options.title = title.to_owned();
    options.subtitle = subtitle.map(str::to_owned);
    options.count_name = "µs per episode".to_owned();
    options.deterministic = true;
    let mut svg = Vec::new();
    flamegraph::from_reader(&mut options, diff.as_slice(), &mut svg)?;
    Ok(svg)
}

/// Characters that fit the width of inferno's default 1200 px image: the
/// title is drawn at 17 px (about 10 px per character), the subtitle at 12 px.
const TITLE_CHARS: usize = 110;
const SUBTITLE_CHARS: usize = 160;
/// The fewest characters a shortened label keeps in the title.
const MIN_LABEL_CHARS: usize = 12;

/// `text` cut to `max` characters, with an ellipsis when cut.
fn fit(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// Where the words `a` and `b` start to differ: the byte offset (in both)
/// of the first word that is not the same, 0 if the first word differs.
fn common_word_prefix(a: &str, b: &str) -> usize {
    let differ = a
        .char_indices()
        .zip(b.chars())
        .find(|((_, ca), cb)| ca != cb)
        .map_or(a.len().min(b.len()), |((i, _), _)| i);
    a[..differ].rfind(' ').map_or(0, |space| space + 1)
}

/// Both labels within `max` characters each, still telling the sides apart:
/// a long label drops the words it shares with the other one, and when the
/// other label is its beginning (only a suffix differs) it keeps its end.
fn short_labels(shown: &str, other: &str, max: usize) -> (String, String) {
    let common = common_word_prefix(shown, other);
    let cut = |label: &str, vs: &str| {
        if label.chars().count() <= max {
            return label.to_owned();
        }
        let (rest, rest_vs) = (&label[common..], &vs[common..]);
        if common == 0 || rest.is_empty() {
            fit(label, max)
        } else if rest.starts_with(rest_vs) {
            let tail: Vec<char> = rest.chars().collect();
            let keep = max.saturating_sub(1).min(tail.len());
            format!("…{}", tail[tail.len() - keep..].iter().collect::<String>())
        } else {
            fit(&format!("…{rest}"), max)
        }
    };
    (cut(shown, other), cut(other, shown))
}

/// The title (short labels, always within the image) and, when a label had
/// to be shortened, a subtitle with the full labels.
fn titles(context: &str, shown: &str, other: &str) -> (String, Option<String>) {
    let frame =
        |s: &str, o: &str| format!("{context}: widths = {s}; red = more than {o}, blue = less");
    let budget =
        (TITLE_CHARS.saturating_sub(frame("", "").chars().count()) / 2).max(MIN_LABEL_CHARS);
    let (s, o) = short_labels(shown, other, budget);
    let title = fit(&frame(&s, &o), TITLE_CHARS);
    let subtitle = (s != shown || o != other).then(|| {
        fit(
            &format!("widths: {shown} | compared with: {other}"),
            SUBTITLE_CHARS,
        )
    });
    (title, subtitle)
}

/// Why the flame graphs could not be written.
#[derive(Debug, thiserror::Error)]
pub enum FlameError {
    /// The directory or a file could not be written.
    #[error(transparent)]
    Output(#[from] OutputError),
    /// inferno could not render one.
    #[error("{name}: cannot render the differential flame graph")]
    Render {
        /// The file being rendered.
        name: String,
        /// inferno's error.
        #[source]
        source: std::io::Error,
    },
}

/// What [`render_all`] drew, and what it could not.
#[derive(Debug, Default)]
pub struct Rendered {
    /// `(file name, SVG)`, in context order.
    pub files: Vec<(String, Vec<u8>)>,
    /// The graphs not drawn because their width side has no samples
    /// (`(file name, "A (label)" or "B (label)" of the empty side)`).
    pub left_out: Vec<(String, String)>,
}

/// Renders both directions for every context with samples on either
/// side, in memory. A direction whose width side has no samples is left
/// out and listed (inferno draws nothing from nothing; the other direction
/// shows that side's stacks). Rendering everything before writing anything
/// means a failure leaves no half-written set.
pub fn render_all(
    a: &RunSet,
    b: &RunSet,
    labels: (&str, &str),
    policy: &LossPolicy,
) -> Result<Rendered, FlameError> {
    let mut rendered = Rendered::default();
    for context in contexts(a, b) {
        let (fa, fb) = (
            mean_folded(a, context, policy),
            mean_folded(b, context, policy),
        );
        let label = context.label();
        let jobs = [
            ("a-vs-b", &fa, &fb, "B", labels.1, labels.0),
            ("b-vs-a", &fb, &fa, "A", labels.0, labels.1),
        ];
        for (suffix, before, after, side, shown, other) in jobs {
            let name = format!("{context}.{suffix}.diff.svg");
            if after.is_empty() {
                rendered.left_out.push((name, format!("{side} ({shown})")));
                continue;
            }
            let (title, subtitle) = titles(label, shown, other);
            let svg =
                differential_svg(before, after, &title, subtitle.as_deref()).map_err(|source| {
                    FlameError::Render {
                        name: name.clone(),
                        source,
                    }
                })?;
            rendered.files.push((name, svg));
        }
    }
    Ok(rendered)
}

/// Renders every flame graph ([`render_all`]), then writes each atomically
/// through `out`. Returns the files written.
pub fn write_all(
    a: &RunSet,
    b: &RunSet,
    labels: (&str, &str),
    policy: &LossPolicy,
    out: &OutputDir,
) -> Result<Vec<PathBuf>, FlameError> {
    let rendered = render_all(a, b, labels, policy)?;
    Ok(out.write_all(&rendered.files)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_differ_per_direction_and_fit_the_image() {
        let long = "6.1.172 victim 256M,vmas=64,threads=4 + process_mrelease";
        let (ab, sub) = titles("reaper (process_mrelease caller)", "B: with-patch", long);
        let (ba, _) = titles("reaper (process_mrelease caller)", long, "B: with-patch");
        assert_ne!(ab, ba);
        assert!(ab.chars().count() <= TITLE_CHARS, "{ab}");
        assert!(ab.contains('…'));
        assert!(ab.ends_with("blue = less"), "{ab}");
        assert!(sub.unwrap().contains(long));
        let (short, none) = titles("victim", "A", "B");
        assert_eq!(short, "victim: widths = A; red = more than B, blue = less");
        assert_eq!(none, None);
    }

    #[test]
    fn long_labels_that_share_words_keep_the_words_that_differ() {
        // The case: the same kernel and scenario on both sides.
        let a = "6.1.172 victim 256M,vmas=64,threads=4 + process_mrelease";
        let b = "6.1.172 victim 256M,vmas=64,threads=4 + process_mrelease reverse";
        let (ab, _) = titles("reaper (process_mrelease caller)", b, a);
        let (ba, _) = titles("reaper (process_mrelease caller)", a, b);
        assert_eq!(
            ab,
            "reaper (process_mrelease caller): widths = …_mrelease reverse; \
             red = more than …process_mrelease, blue = less"
        );
        assert_ne!(ab, ba);
        assert!(ab.chars().count() <= TITLE_CHARS);
        let (s, o) = short_labels(
            "kernel 6.1 with the thaw patch",
            "kernel 6.1 without it",
            12,
        );
        assert_eq!((s.as_str(), o.as_str()), ("…with the t…", "…without it"));
        assert_eq!(common_word_prefix("same", "same"), 0);
        assert_eq!(common_word_prefix("x a", "x b"), 2);
    }

    #[test]
    fn differential_svg_colours_the_grown_frame() {
        let before = vec!["a;b 100".to_owned(), "a;c 100".to_owned()];
        let after = vec!["a;b 200".to_owned(), "a;c 100".to_owned()];
        let svg = String::from_utf8(differential_svg(&before, &after, "t", None).unwrap()).unwrap();
        assert!(svg.contains("<svg"));
        // inferno's frame title: "b (200 µs per episode, 66.67%; +33.33%)",
        // the delta relative to the after total (300).
        assert!(
            svg.contains("b (200 µs per episode, 66.67%; +33.33%)"),
            "{svg}"
        );
    }

    #[test]
    fn a_side_without_samples_in_a_context_is_listed_not_drawn() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/compare/vm-6.1-forward");
        let b = super::super::load_set("B", &path, &Default::default()).unwrap();
        let mut a = b.clone();
        for run in &mut a.runs {
            for episode in &mut run.run.episodes {
                for c in &mut episode.contexts {
                    if c.context == reaper_model::Context::MreleaseCaller {
                        c.stacks.clear();
                    }
                }
            }
        }
        let rendered = render_all(&a, &b, ("empty", "full"), &LossPolicy::default()).unwrap();
        assert_eq!(
            rendered.left_out,
            vec![(
                "mrelease_caller.b-vs-a.diff.svg".to_owned(),
                "A (empty)".to_owned()
            )]
        );
        let names: Vec<&str> = rendered.files.iter().map(|(n, _)| n.as_str()).collect();
        assert!(
            names.contains(&"mrelease_caller.a-vs-b.diff.svg"),
            "{names:?}"
        );
    }
}
