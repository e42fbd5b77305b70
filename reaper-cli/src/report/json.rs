//! The derived report as JSON (`reaper report --json`), for scripts that
//! want the tables' numbers without parsing text.

use super::model::Report;

/// Pretty-printed JSON of the report, newline-terminated.
pub fn render(report: &Report) -> String {
    // Serializing plain structs of strings and numbers cannot fail (no maps
    // with non-string keys, no custom Serialize impls).
    let mut text = serde_json::to_string_pretty(report)
        .unwrap_or_else(|e| format!("{{\"error\": \"cannot serialize report: {e}\"}}"));
    text.push('\n');
    text
}
