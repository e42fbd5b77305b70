//! Vocabulary kept typed (issue 24): `Result<_, String>` (an error
//! flattened to text on first contact) and string literals of a closed
//! vocabulary (attach modes, concept ids) outside the module that owns the
//! enum, in non-test code.

use std::path::Path;

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

/// The modules allowed to spell a vocabulary's words: the enum's own.
pub const OWNERS: &[&str] = &["reaper-model/src/vocabulary.rs"];

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

/// Whether `file` (relative to the workspace root) may spell the
/// vocabularies: the enum's module, and this checker.
pub fn owns_vocabulary(file: &Path) -> bool {
    OWNERS.iter().any(|o| file.ends_with(o)) || file.starts_with("xtask/src/house")
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

    #[test]
    fn blanking_keeps_lines_and_drops_comments_and_strings() {
        let code = "let a = \"Result<(), String>\"; // Result<(), String>\nlet c = '\"'; fn f<'a>() -> Result<(), String> {}\nlet r = r#\"x\"y\"#;";
        let blanked = blank(code, false);
        assert_eq!(blanked.lines().count(), 3);
        assert_eq!(string_results(&blanked), [2]);
        assert!(blanked.contains("r#\"   \"#"), "{blanked}");
    }
}
