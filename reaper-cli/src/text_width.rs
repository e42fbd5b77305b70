//! How wide text is on a terminal: the columns every table of reaper pads
//! to. `chars().count()` is wrong for East Asian wide characters (two
//! columns: `--label-a "内核 6.1"`) and combining marks (none); the Unicode
//! width tables of `unicode-width` are right for both.

use unicode_width::UnicodeWidthStr as _;

/// Columns `text` takes on a terminal.
pub fn width(text: &str) -> usize {
    text.width()
}

/// `text` followed by spaces up to `columns` (nothing when it is wider).
pub fn pad_right(text: &str, columns: usize) -> String {
    format!("{text}{}", " ".repeat(columns.saturating_sub(width(text))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_and_combining_characters() {
        assert_eq!(width("6.1"), 3);
        assert_eq!(width("内核 6.1"), 8);
        assert_eq!(width("µs → ms"), 7);
        assert_eq!(width("e\u{301}"), 1);
        assert_eq!(pad_right("内核", 6), "内核  ");
        assert_eq!(pad_right("wider", 2), "wider");
    }
}
