//! Vocabulary kept typed (issue 24): `Result<_, String>` (an error
//! flattened to text on first contact) and string literals of a closed
//! vocabulary (attach modes, concept ids, scenario kinds, timeline kinds)
//! outside the module that owns the enum, in non-test code.

use std::path::Path;

use reaper_model::{ScenarioKind, TimelineEventKind};

/// Attach-mode spellings run files hold; only `reaper-model/src/vocabulary.rs`
/// may spell them.
pub const ATTACH_MODES: &[&str] = &[
    "perf_event",
    "tracepoint",
    "raw_tracepoint",
    "fentry",
    "fexit",
    "kprobe",
    "kretprobe",
];

/// Concept ids of the catalog; only the module of their enum may spell them.
pub const CONCEPT_IDS: &[&str] = &[
    "reaper_work",
    "reaper_kthread",
    "victim_teardown",
    "victim_unmap",
    "per_vma_unmap",
    "vma_zap_worker",
    "pte_lock",
    "rmap_removal",
    "tlb_flush",
    "tlb_finish",
    "page_freeing",
    "spin_slowpath",
    "mrelease_syscall",
];

/// One closed vocabulary: its words, and the modules that may spell them
/// (the enum's own).
pub struct Vocabulary {
    /// The words, as run files hold them.
    pub words: fn() -> Vec<&'static str>,
    /// The modules allowed to spell them (paths from the workspace root).
    pub owners: &'static [&'static str],
}

/// reaper-model's vocabulary module, owner of the attach modes and concept ids.
const VOCABULARY: &str = "reaper-model/src/vocabulary.rs";
/// Owner of the scenario and timeline kinds.
const KINDS: &str = "reaper-model/src/vocabulary/kinds.rs";

/// Every vocabulary the scan counts. The kinds' words come from their enums,
/// so a kind added later is counted from the day it exists.
pub const VOCABULARIES: &[Vocabulary] = &[
    Vocabulary {
        words: || ATTACH_MODES.to_vec(),
        owners: &[VOCABULARY],
    },
    Vocabulary {
        words: || CONCEPT_IDS.to_vec(),
        owners: &[VOCABULARY],
    },
    Vocabulary {
        words: || ScenarioKind::ALL.iter().map(|k| k.name()).collect(),
        owners: &[KINDS],
    },
    Vocabulary {
        // reaper-common's TimelineKind spells the kernel kinds' names
        // beside the eBPF side's raw values.
        words: || TimelineEventKind::ALL.iter().map(|k| k.name()).collect(),
        owners: &[KINDS, "reaper-common/src/timeline.rs"],
    },
];

/// Words of a kind that also name other things: a CLI flag (`--pid`,
/// `--watch`, `--oom`, `--kill`, `--victim`), a JSON field (`"pid"`,
/// `"victim"`), a tracepoint or its category (`oom:*`, `kmem:rss_stat`), a
/// comm, a syscall (`exit_group`), a label ("kill", "exit"). Counted only
/// on a line that speaks of a kind (see [`speaks_of_kind`]); the other
/// kind words are counted wherever they stand.
pub const SHARED_WORDS: &[&str] = &[
    "victim",
    "pid",
    "exit",
    "watch",
    "oom",
    "kill",
    "rss_stat",
    "exit_group",
];

/// Each `Result<…, String>` in `code`, as the line it starts on (1-based).
pub fn string_results(code: &str) -> Vec<usize> {
    let mut found = Vec::new();
    for (at, _) in code.match_indices("Result<") {
        if code[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
        {
            continue; // e.g. `ProbeResult<`
        }
        let args = &code[at + "Result<".len()..];
        let (mut depth, mut last_comma, mut end) = (0usize, None, None);
        for (i, c) in args.char_indices() {
            match c {
                '<' | '(' | '[' => depth += 1,
                '>' if depth == 0 => {
                    end = Some(i);
                    break;
                }
                '>' | ')' | ']' => depth = depth.saturating_sub(1),
                ',' if depth == 0 => last_comma = Some(i),
                _ => {}
            }
        }
        // rustfmt leaves a trailing comma after the last argument of a
        // broken-up list: the error type is then the segment before it.
        let Some(end) = end else { continue };
        let (mut comma, mut end) = (last_comma, end);
        if let Some(c) = comma
            && args[c + 1..end].trim().is_empty()
        {
            end = c;
            comma = args[..c].rfind(',').filter(|&p| depth_at(args, p) == 0);
        }
        if let Some(comma) = comma
            && args[comma + 1..end].trim() == "String"
        {
            found.push(code[..at].lines().count().max(1));
        }
    }
    found
}

/// The bracket depth of `text` at byte `at`.
fn depth_at(text: &str, at: usize) -> usize {
    text[..at].chars().fold(0usize, |d, c| match c {
        '<' | '(' | '[' => d + 1,
        '>' | ')' | ']' => d.saturating_sub(1),
        _ => d,
    })
}

/// Each quoted literal of `words` in `code` (`"fentry"`, exactly), with its
/// line (1-based). `code` comes from [`blank`] with its strings kept.
pub fn literals<'w>(code: &str, words: &[&'w str]) -> Vec<(usize, &'w str)> {
    let mut found = Vec::new();
    for (n, line) in code.lines().enumerate() {
        for word in words {
            if line.contains(&format!("\"{word}\"")) {
                found.push((n + 1, *word));
            }
        }
    }
    found
}

/// Each literal of `vocabulary` in `code` (from [`blank`] with its strings
/// kept) that stands for one of its words: every literal of a word only a
/// kind has, and a [`SHARED_WORDS`] literal on a line that speaks of a
/// kind. A shared word passed on without `kind` on its line escapes the
/// scan: the fields being enums, no such literal can become a kind
/// without a conversion the compiler sees.
pub fn vocabulary_literals(code: &str, vocabulary: &Vocabulary) -> Vec<(usize, &'static str)> {
    let words = (vocabulary.words)();
    let lines: Vec<&str> = code.lines().collect();
    literals(code, &words)
        .into_iter()
        .filter(|(line, word)| !SHARED_WORDS.contains(word) || speaks_of_kind(lines[line - 1]))
        .collect()
}

/// Whether `line` names a kind: the identifier `kind` (`kind: …`,
/// `e.kind == …`) or the JSON key `"kind"`, not `TimelineKind` or `kinds`.
pub fn speaks_of_kind(line: &str) -> bool {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    line.match_indices("kind").any(|(at, _)| {
        !line[..at].chars().next_back().is_some_and(is_ident)
            && !line[at + "kind".len()..]
                .chars()
                .next()
                .is_some_and(is_ident)
    })
}

/// Whether `file` (relative to the workspace root) may spell
/// `vocabulary`'s words: the enum's module, and this checker.
pub fn owns_vocabulary(file: &Path, vocabulary: &Vocabulary) -> bool {
    vocabulary.owners.iter().any(|o| file.ends_with(o)) || file.starts_with("xtask/src/house")
}

/// `code` with its comments (and, unless `keep_strings`, the insides of its
/// string literals) blanked to spaces, lines kept where they were.
pub fn blank(code: &str, keep_strings: bool) -> String {
    let chars: Vec<char> = code.chars().collect();
    let mut out = String::with_capacity(code.len());
    let mut i = 0;
    while i < chars.len() {
        let rest = &chars[i..];
        if rest.starts_with(&['/', '/']) {
            let end = rest.iter().position(|c| *c == '\n').unwrap_or(rest.len());
            blank_to(&mut out, &rest[..end]);
            i += end;
        } else if rest.starts_with(&['/', '*']) {
            let end = (2..rest.len())
                .find(|&k| rest[k - 1] == '*' && rest[k] == '/')
                .map_or(rest.len(), |k| k + 1);
            blank_to(&mut out, &rest[..end]);
            i += end;
        } else if rest[0] == '"' || (rest[0] == 'r' && matches!(rest.get(1), Some('"' | '#'))) {
            i += string_literal(rest, keep_strings, &mut out);
        } else if rest[0] == '\'' && (rest.get(2) == Some(&'\'') || rest.get(1) == Some(&'\\')) {
            // a char literal ('"', '\''), not a lifetime
            let end = char_literal_len(rest);
            out.extend(&rest[..end]);
            i += end;
        } else if rest[0].is_alphanumeric() || rest[0] == '_' {
            // a whole identifier, so `br"…"` or `foo_r"` never starts a raw string midway
            let end = rest
                .iter()
                .position(|c| !(c.is_alphanumeric() || *c == '_'))
                .unwrap_or(rest.len());
            out.extend(&rest[..end]);
            i += end;
        } else {
            out.push(rest[0]);
            i += 1;
        }
    }
    out
}

/// Appends `from` blanked: newlines kept, everything else a space.
fn blank_to(out: &mut String, from: &[char]) {
    for c in from {
        out.push(if *c == '\n' { '\n' } else { ' ' });
    }
}

/// Appends the string literal (plain or raw) `rest` starts with, its
/// insides blanked unless `keep_strings`; hands back its length.
fn string_literal(rest: &[char], keep_strings: bool, out: &mut String) -> usize {
    let hashes = rest.iter().skip(1).take_while(|c| **c == '#').count();
    let raw = rest[0] == 'r';
    let open = if raw { 2 + hashes } else { 1 };
    let mut k = open;
    while k < rest.len() {
        if !raw && rest[k] == '\\' {
            k += 2;
            continue;
        }
        if rest[k] == '"'
            && rest[k + 1..]
                .iter()
                .take(hashes)
                .filter(|c| **c == '#')
                .count()
                == hashes
        {
            break;
        }
        k += 1;
    }
    let end = (k + 1 + if raw { hashes } else { 0 }).min(rest.len());
    if keep_strings || rest[..end].len() < open + 1 {
        out.extend(&rest[..end]);
    } else {
        out.extend(&rest[..open]);
        blank_to(
            out,
            &rest[open..end.saturating_sub(1 + if raw { hashes } else { 0 })],
        );
        out.extend(&rest[end.saturating_sub(1 + if raw { hashes } else { 0 })..end]);
    }
    end
}

/// The length of the char literal `rest` starts with.
fn char_literal_len(rest: &[char]) -> usize {
    (2..rest.len())
        .find(|&k| {
            // a closing quote, unless escaped (but `'\\'` closes)
            rest[k] == '\'' && (rest[k - 1] != '\\' || k > 2 && rest[k - 2] == '\\')
        })
        .map_or(rest.len(), |k| k + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_errors_are_found_across_lines_and_nesting() {
        let code = "fn a() -> Result<(), String> {}\nfn b() -> Result<\n    Vec<(u8, String)>,\n    String,\n> {}\nfn c() -> Result<String, Error> {}\nfn d() -> io::Result<String> {}\n";
        assert_eq!(string_results(code), [1, 2]);
    }

    #[test]
    fn vocabulary_literals_are_found_outside_comments() {
        let code = "let m = \"fentry\";\n// \"kprobe\" in a comment\nlet s = \"fentry_x\"; /* \"kprobe\" */\n";
        assert_eq!(literals(&blank(code, true), ATTACH_MODES), [(1, "fentry")]);
    }

    /// A kind's own word counts anywhere; a word other things share counts
    /// only where a kind is meant.
    #[test]
    fn kind_literals_are_found_where_a_kind_is_meant() {
        let timeline = &VOCABULARIES[3];
        let scenario = &VOCABULARIES[2];
        let code = "self.find(\"mrelease_enter\");\n\
                    e.kind == \"kill\"\n\
                    #[arg(conflicts_with_all = [\"kill\"])]\n\
                    json!({\"kind\": \"kill\", \"tid\": 1})\n\
                    get(\"kmem\", \"rss_stat\")\n\
                    TimelineKind::X; \"exit_group\"\n";
        let found = vocabulary_literals(&blank(code, true), timeline);
        assert_eq!(found, [(1, "mrelease_enter"), (2, "kill"), (4, "kill")]);
        let code = "kind: \"oom\".into(),\nget(\"oom\", \"wake_reaper\")\nkinds: \"pid\"\n";
        assert_eq!(
            vocabulary_literals(&blank(code, true), scenario),
            [(1, "oom")]
        );
        assert!(owns_vocabulary(
            Path::new("reaper-common/src/timeline.rs"),
            timeline
        ));
        assert!(!owns_vocabulary(
            Path::new("reaper-common/src/timeline.rs"),
            scenario
        ));
    }

    /// Every kind word is in a vocabulary, and the shared words are kind words.
    #[test]
    fn the_kind_vocabularies_hold_every_kind() {
        let scenario = (VOCABULARIES[2].words)();
        let timeline = (VOCABULARIES[3].words)();
        assert_eq!(scenario, ["victim", "pid", "exit", "watch", "oom"]);
        assert!(timeline.contains(&"kill") && timeline.contains(&"exit_mmap_done"));
        for word in SHARED_WORDS {
            assert!(scenario.contains(word) || timeline.contains(word), "{word}");
        }
    }

    #[test]
    fn blanking_keeps_lines_and_drops_comments_and_strings() {
        let code = "let a = \"Result<(), String>\"; // Result<(), String>\nlet c = '\"'; fn f<'a>() -> Result<(), String> {}\nlet r = r#\"x\"y\"#;";
        let blanked = blank(code, false);
        assert_eq!(blanked.lines().count(), 3);
        assert_eq!(string_results(&blanked), [2]);
        assert!(blanked.contains("r#\"   \"#"), "{blanked}");
    }
}
