//! Numbered notes under a table: a "not measured (why)" too long for a cell
//! becomes "not measured [n]", with the reason printed once below, so one
//! long kernel answer does not widen a whole column.

use std::fmt::Write;

/// Longest "not measured (why)" kept inline in a cell.
const MAX_INLINE_REASON: usize = 40;

/// Long not-measured reasons, printed under a table.
#[derive(Default)]
pub(crate) struct Notes(pub(crate) Vec<String>);

impl Notes {
    /// The cell text for a reason: inline when short, else a note reference.
    pub(crate) fn cell(&mut self, why: &str) -> String {
        let text = format!("not measured ({why})");
        if text.chars().count() <= MAX_INLINE_REASON {
            return text;
        }
        let n = match self.0.iter().position(|t| *t == text) {
            Some(at) => at + 1,
            None => {
                self.0.push(text);
                self.0.len()
            }
        };
        format!("not measured [{n}]")
    }

    /// A reference "[n]" to `text`, printed as is under the table (one
    /// note per distinct text).
    pub(crate) fn mark(&mut self, text: &str) -> String {
        let n = match self.0.iter().position(|t| t == text) {
            Some(at) => at + 1,
            None => {
                self.0.push(text.to_owned());
                self.0.len()
            }
        };
        format!("[{n}]")
    }

    /// Appends "[n] reason" lines.
    pub(crate) fn render(&self, out: &mut String) {
        for (i, note) in self.0.iter().enumerate() {
            let _ = writeln!(out, "[{}] {note}", i + 1);
        }
    }
}
