//! GitHub Actions for `reaper gate`: the markdown summary is appended to the
//! job summary file named by `GITHUB_STEP_SUMMARY`, and each regressed
//! metric becomes an `::error title=…::…` workflow command, which the runner
//! turns into an annotation on the run (it reads commands from stdout and
//! stderr alike; reaper prints them to stderr so `--json` stays clean).

use std::ffi::OsString;
use std::io::Write as _;
use std::path::PathBuf;

use crate::compare::gate::GateReport;
use crate::compare::gate_render;

/// What the environment says about GitHub Actions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Actions {
    /// `GITHUB_STEP_SUMMARY`, when set and non-empty.
    pub step_summary: Option<PathBuf>,
    /// Running under Actions (`GITHUB_ACTIONS=true`, or a summary file is set).
    pub active: bool,
}

impl Actions {
    /// From the process environment.
    pub fn from_env() -> Self {
        Self::from_vars(
            std::env::var_os("GITHUB_STEP_SUMMARY"),
            std::env::var_os("GITHUB_ACTIONS"),
        )
    }

    /// From the two variables' values.
    pub fn from_vars(step_summary: Option<OsString>, github_actions: Option<OsString>) -> Self {
        let step_summary = step_summary.filter(|v| !v.is_empty()).map(PathBuf::from);
        let active = step_summary.is_some() || github_actions.is_some_and(|v| v == "true");
        Self {
            step_summary,
            active,
        }
    }

    /// Appends `markdown` to the job summary file, if one is set; returns it.
    /// (An append, not a replacement: other steps write the same file.)
    pub fn append_summary(&self, markdown: &str) -> std::io::Result<Option<&PathBuf>> {
        let Some(path) = &self.step_summary else {
            return Ok(None);
        };
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)?;
        file.write_all(markdown.as_bytes())?;
        if !markdown.ends_with('\n') {
            file.write_all(b"\n")?;
        }
        Ok(Some(path))
    }

    /// The `::error` command of a gate that could not judge (exit 2), naming
    /// why (none outside Actions).
    pub fn refusal_command(&self, reason: &str) -> Option<String> {
        self.active
            .then(|| error_command("reaper gate: refused (exit 2)", reason))
    }

    /// One `::warning` command per recording problem (drift, a blocked
    /// design); none outside Actions.
    pub fn warning_commands(&self, warnings: &[String]) -> Vec<String> {
        if !self.active {
            return Vec::new();
        }
        warnings
            .iter()
            .map(|w| {
                format!(
                    "::warning title={}::{}",
                    escape_property("reaper gate: recording"),
                    escape_data(w)
                )
            })
            .collect()
    }

    /// One `::error` command per regressed metric (none outside Actions).
    pub fn error_commands(&self, report: &GateReport) -> Vec<String> {
        if !self.active {
            return Vec::new();
        }
        report
            .regressions()
            .map(|v| {
                error_command(
                    &format!("reaper gate: {} regressed", v.metric),
                    &gate_render::regression_line(v),
                )
            })
            .collect()
    }
}

/// An `::error` workflow command, with the runner's escaping of the
/// property and the message.
pub fn error_command(title: &str, message: &str) -> String {
    format!(
        "::error title={}::{}",
        escape_property(title),
        escape_data(message)
    )
}

/// Escaping of a command's message (the runner's `escapeData`).
fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escaping of a command property (the runner's `escapeProperty`).
fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_file_makes_it_active_and_empty_values_do_not() {
        let a = Actions::from_vars(Some("/tmp/s".into()), None);
        assert!(a.active);
        assert_eq!(a.step_summary, Some(PathBuf::from("/tmp/s")));
        assert_eq!(
            Actions::from_vars(Some("".into()), None),
            Actions::default()
        );
        assert!(Actions::from_vars(None, Some("true".into())).active);
        assert!(!Actions::from_vars(None, Some("false".into())).active);
    }

    #[test]
    fn summary_is_appended_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("summary.md");
        std::fs::write(&path, "earlier step\n").unwrap();
        let a = Actions::from_vars(Some(path.clone().into()), None);
        assert_eq!(a.append_summary("# gate").unwrap(), Some(&path));
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "earlier step\n# gate\n"
        );
        assert_eq!(Actions::default().append_summary("x").unwrap(), None);
    }

    #[test]
    fn refusals_and_warnings_only_under_actions() {
        let on = Actions::from_vars(None, Some("true".into()));
        assert_eq!(
            on.refusal_command("too few runs").as_deref(),
            Some("::error title=reaper gate%3A refused (exit 2)::too few runs")
        );
        assert_eq!(
            on.warning_commands(&["blocked design: 5%".into()]),
            ["::warning title=reaper gate%3A recording::blocked design: 5%25"]
        );
        let off = Actions::default();
        assert_eq!(off.refusal_command("x"), None);
        assert!(off.warning_commands(&["x".into()]).is_empty());
    }

    #[test]
    fn commands_escape_what_the_runner_would_misread() {
        assert_eq!(
            error_command("a: b, c", "50% up\nsecond line"),
            "::error title=a%3A b%2C c::50%25 up%0Asecond line"
        );
    }
}
