//! Text from run files is data: the one sanitiser for everything reaper
//! prints to a terminal or to CI, and writes into markdown or folded files.
//!
//! Run files travel (CI artifacts anyone can shape), and even a genuine one
//! holds text another user chose: a task's comm can be any bytes but NUL
//! (`prctl(PR_SET_NAME)`), including ESC, BEL, CR and newlines. So:
//! - [`escape`] turns control and invisible-format characters of one value
//!   into visible escapes (`\n`, `\x1b`, `\u{202e}`); the run-file loader
//!   applies it to every string it decodes (`crate::input::guard`), so no
//!   value can start a line, move the cursor or hide text;
//! - [`guard_lines`] is the last step before stdout and stderr: it escapes
//!   any control character but the newline and tab, and defuses every line
//!   GitHub Actions would run as a workflow command (`::cmd::` after leading
//!   blanks, `##[cmd]` anywhere: the runner's two parsers). reaper's own
//!   commands are written only by `crate::ci::github`, past this guard;
//! - [`markdown`] makes a value inert inside a markdown line or table cell
//!   (the gate's summary, which GitHub renders): emphasis, links, images,
//!   code, tables, math and HTML (`<!--` hides the rest of a summary);
//! - [`xml`] makes a value inert inside XML and SVG (JUnit, the
//!   collision map);
//! - [`folded_frame`] keeps a frame name one frame of one line of a
//!   `.folded` file (`;` separates frames, the last blank the count).

use std::borrow::Cow;

/// Whether `c` must not reach a terminal or a CI log as is: C0 and C1
/// controls, DEL, and the Unicode characters that break lines or reorder or
/// hide text (line/paragraph separators, bidirectional overrides and
/// isolates, zero-width characters, the byte-order mark).
fn is_hazard(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{2069}'
                | '\u{FEFF}'
        )
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
        c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
    }
}

/// One value from a run file made printable: every control or
/// invisible-format character becomes a visible escape. Unchanged (and not
/// copied) when there is none, as in every file reaper writes itself.
pub fn escape(s: &str) -> Cow<'_, str> {
    let clean = if s.is_ascii() {
        !s.bytes().any(|b| b < 0x20 || b == 0x7f)
    } else {
        !s.chars().any(is_hazard)
    };
    if clean {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_hazard(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// The prefix of a workflow command the runner looks for after trimming a
/// line's leading blanks (its `TryParseV2`).
const COMMAND_PREFIX: &str = "::";
/// The older command form, found anywhere in a line (its `TryParse`).
const OLD_COMMAND_PREFIX: &str = "##[";

/// Text on its way to stdout or stderr: control characters other than the
/// newline and the tab are escaped (a carriage return is a line break to
/// the runner), and no line reads as a workflow command: a leading `::`
/// becomes `\u003a:` and every `##[` becomes `\u0023#[`, escapes that
/// read the same inside a JSON string (`--json` output stays valid JSON
/// that decodes to the original text).
pub fn guard_lines(text: &str) -> Cow<'_, str> {
    let hazard = |c: char| c != '\n' && c != '\t' && is_hazard(c);
    let risky_line = |line: &str| {
        line.trim_start().starts_with(COMMAND_PREFIX) || line.contains(OLD_COMMAND_PREFIX)
    };
    if !text.chars().any(hazard) && !text.split('\n').any(risky_line) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let mut clean = String::with_capacity(line.len());
        for c in line.chars() {
            if hazard(c) {
                push_escaped(&mut clean, c);
            } else {
                clean.push(c);
            }
        }
        let blanks = clean.len() - clean.trim_start().len();
        if clean[blanks..].starts_with(COMMAND_PREFIX) {
            clean.replace_range(blanks..blanks + 1, "\\u003a");
        }
        out.push_str(&clean.replace(OLD_COMMAND_PREFIX, "\\u0023#["));
    }
    Cow::Owned(out)
}

/// A value made inert inside XML or SVG text and attributes (the gate's
/// JUnit file, the collision map): the five markup characters become
/// entities and C0 controls XML 1.0 cannot hold are dropped.
pub fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

/// A value made inert inside one line of markdown (a list item, a table
/// cell, never a line's start): [`escape`]d, then the characters that open
/// inline markup are backslash-escaped (`[` `]`: links and images; `` ` ``,
/// `*`, `~`, `$`: code, emphasis, math; `|`: a new cell; `\`; not `_`,
/// which kernel and arch names are full of and which cannot emphasise
/// inside a word) and
/// `<`, `>` and `&` become entities, so no value can open HTML (a comment
/// that hides the rest of a summary), a link, an image or a new cell.
pub fn markdown(s: &str) -> String {
    let s = escape(s);
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\\' | '`' | '*' | '[' | ']' | '|' | '~' | '$' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// A value as inline code in one line of markdown (not a table cell): in
/// backticks when it has none and nothing to escape, else [`markdown`].
pub fn markdown_code(s: &str) -> String {
    if !s.contains('`') && matches!(escape(s), Cow::Borrowed(_)) {
        format!("`{s}`")
    } else {
        markdown(s)
    }
}

/// A frame name as one frame of a folded line: [`escape`]d (no newline can
/// end the line), and `;`, the frame separator, written `\x3b`.
pub fn folded_frame(s: &str) -> Cow<'_, str> {
    let s = escape(s);
    if s.contains(';') {
        Cow::Owned(s.replace(';', "\\x3b"))
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        for s in [
            "exit_mmap",
            "reaper-victim",
            "victim 1G,vmas=64 + process_mrelease",
            "µs ✓",
        ] {
            assert!(matches!(escape(s), Cow::Borrowed(_)), "{s}");
            assert!(matches!(guard_lines(s), Cow::Borrowed(_)), "{s}");
        }
    }

    #[test]
    fn controls_and_invisible_characters_become_visible() {
        assert_eq!(
            escape("a\nb\r\tc\x1b[2J\x07\x08"),
            "a\\nb\\r\\tc\\x1b[2J\\x07\\x08"
        );
        assert_eq!(escape("x\u{9b}y\u{7f}"), "x\\u{9b}y\\x7f");
        assert_eq!(escape("abc\u{202e}fed\u{2028}"), "abc\\u{202e}fed\\u{2028}");
    }

    #[test]
    fn workflow_commands_are_defused_at_line_starts_and_old_ones_anywhere() {
        let text = "ok\n::add-mask::secret\n   ::error title=x::boom\nx ##[error]y\nfine :: here\n";
        assert_eq!(
            guard_lines(text),
            "ok\n\\u003a:add-mask::secret\n   \\u003a:error title=x::boom\nx \\u0023#[error]y\nfine :: here\n"
        );
        // A carriage return is a line break to the runner: escaped.
        assert_eq!(
            guard_lines("a\r::stop-commands::t"),
            "a\\r::stop-commands::t"
        );
        // Unicode blanks are trimmed by the runner too.
        assert_eq!(
            guard_lines("\u{3000}::error::x"),
            "\u{3000}\\u003a:error::x"
        );
        // Inside JSON the escape decodes back to the text.
        let json = guard_lines("{\"k\": \"a ##[error]b\"}");
        let back: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(back["k"], "a ##[error]b");
    }

    #[test]
    fn markdown_values_cannot_open_html_links_or_cells() {
        assert_eq!(
            markdown("<!-- x | ![i](http://e/x.png) [l](u) `c` *e* $m$ # h"),
            "&lt;!-- x \\| !\\[i\\](http://e/x.png) \\[l\\](u) \\`c\\` \\*e\\* \\$m\\$ # h"
        );
        assert_eq!(markdown("a\n## b"), "a\\\\n## b");
        assert_eq!(markdown("6.18.44-amd64 x86_64"), "6.18.44-amd64 x86_64");
        assert_eq!(markdown_code("runs/a b"), "`runs/a b`");
        assert_eq!(markdown_code("a`b<!--"), "a\\`b&lt;!--");
    }

    #[test]
    fn folded_frames_cannot_split_a_stack_or_a_line() {
        assert_eq!(folded_frame("a;b\nc 1"), "a\\x3bb\\nc 1");
        assert_eq!(folded_frame("exit_mmap"), "exit_mmap");
    }
}
