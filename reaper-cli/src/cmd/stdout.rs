//! `-o -`: a single-file output written to stdout, where one file is what
//! the command writes; refused (exit 2) where it writes a directory of
//! files, so no directory named `-` is ever created.

use std::path::Path;

use crate::exit::UsageError;

/// Whether an output argument is `-` (stdout).
pub fn is_dash(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Refuses `-o -` for a command that writes several files into a directory.
pub fn refuse_dash(path: Option<&Path>, command: &str, files: &str) -> Result<(), UsageError> {
    match path {
        Some(p) if is_dash(p) => Err(UsageError(anyhow::anyhow!(
            "-o -: `{command}` writes {files} into a directory, so it cannot write to stdout; \
             give a directory (only `reaper report RUN --format pprof|trace|speedscope -o -` \
             writes one file to stdout)"
        ))),
        _ => Ok(()),
    }
}

/// Writes one file's bytes to stdout. Binary bytes (`binary`) are refused
/// on a terminal, where they would only garble it.
pub fn write(bytes: &[u8], binary: bool, what: &str) -> anyhow::Result<()> {
    if binary && crate::console::stdout_is_terminal() {
        return Err(UsageError(anyhow::anyhow!(
            "-o -: {what} is binary and stdout is a terminal; redirect it (`> profile.pb.gz`) or give -o DIR"
        ))
        .into());
    }
    crate::console::out_file(bytes)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_lone_dash_is_stdout() {
        assert!(is_dash(Path::new("-")));
        assert!(!is_dash(Path::new("./-")));
        assert!(!is_dash(Path::new("out")));
        assert!(refuse_dash(Some(Path::new("out")), "record", "files").is_ok());
        assert!(refuse_dash(None, "record", "files").is_ok());
        let err = refuse_dash(Some(Path::new("-")), "record", "run.json and flame graphs")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`record` writes run.json and flame graphs"),
            "{err}"
        );
    }
}
