//! Loading one side of a comparison: a run file, or every run file found
//! recursively under a directory (`reaper record -o DIR` output, a directory
//! of such directories, or loose `*.json` runs).
//!
//! Each file is read as JSON once. A file of an earlier schema version is
//! upgraded to the current one as it is read; `schema_version` is then taken
//! before the full decode, so a side of a newer schema version is reported as
//! incomparable rather than as a decode error. Decoding consumes the raw
//! JSON: a loaded run is kept once, typed.

use std::path::{Path, PathBuf};

use crate::model::Run;
use crate::report::load::{LoadError, read_run_text, run_from_json, upgrade_older};

/// A `*.json` file under a run-set directory that is a run file.
#[derive(Clone, Debug)]
pub struct LoadedRun {
    /// Where it came from.
    pub path: PathBuf,
    /// The decoded run.
    pub run: Run,
}

/// One side of a comparison.
#[derive(Clone, Debug)]
pub struct RunSet {
    /// The path given on the command line.
    pub path: PathBuf,
    /// The runs, sorted by path.
    pub runs: Vec<LoadedRun>,
}

/// Why a run set could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SetError {
    /// The path does not exist.
    #[error("{}: no such file or directory; pass a run.json or a directory of runs written by `reaper record -o DIR`", path.display())]
    Missing {
        /// The path given.
        path: PathBuf,
    },
    /// A directory without any run file.
    #[error("{}: no run files found (looked for *.json files with a schema_version and episodes, recursively); record some with `reaper record --runs N -o DIR`", path.display())]
    Empty {
        /// The directory.
        path: PathBuf,
    },
    /// Walking a directory failed.
    #[error("{}: cannot list the directory", path.display())]
    Walk {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A run file failed to load.
    #[error(transparent)]
    Load(#[from] LoadError),
}

impl RunSet {
    /// Episodes over all runs.
    pub fn episodes(&self) -> usize {
        self.runs.iter().map(|r| r.run.episodes.len()).sum()
    }

    /// Complete (non-partial) episodes over all runs: the comparison's N.
    pub fn complete_episodes(&self) -> usize {
        self.runs
            .iter()
            .flat_map(|r| &r.run.episodes)
            .filter(|e| !e.partial)
            .count()
    }

    /// Distinct values of `f` over the runs, in first-seen order.
    pub fn distinct(&self, f: impl Fn(&Run) -> String) -> Vec<String> {
        let mut seen: Vec<String> = Vec::new();
        for r in &self.runs {
            let v = f(&r.run);
            if !seen.contains(&v) {
                seen.push(v);
            }
        }
        seen
    }

    /// The default column label: kernel release and scenario.
    pub fn default_label(&self) -> String {
        let kernels = self.distinct(|r| r.host.kernel_release.clone()).join(", ");
        let scenarios = self
            .distinct(|r| r.recording.scenario.description.clone())
            .join(", ");
        format!("{kernels} {scenarios}")
    }
}

/// The schema version of a file, read without decoding the rest.
pub fn schema_version(raw: &serde_json::Value) -> Option<u64> {
    raw.get("schema_version")?.as_u64()
}

/// Whether a JSON value looks like a run file (as opposed to, say, the JSON
/// of `reaper report --json` or `reaper diff --json` kept beside it).
fn looks_like_run(raw: &serde_json::Value) -> bool {
    raw.get("schema_version").is_some() && raw.get("episodes").is_some()
}

/// A file's text as JSON, with the report loader's errors (and its size
/// bound).
fn read_json(path: &Path) -> Result<serde_json::Value, LoadError> {
    let text = read_run_text(path)?;
    let mut raw = serde_json::from_str(&text).map_err(|source| LoadError::Corrupt {
        path: path.to_owned(),
        line: source.line(),
        column: source.column(),
        source,
    })?;
    if looks_like_run(&raw) {
        upgrade_older(&mut raw, path)?;
    }
    Ok(raw)
}

/// Every `*.json` file under `dir`, recursively, sorted.
fn json_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), SetError> {
    let walk = |source| SetError::Walk {
        path: dir.to_owned(),
        source,
    };
    // Symlinks are not followed (a run set is untrusted: a link could loop
    // or lead anywhere), and only regular files are read.
    let mut entries: Vec<(PathBuf, std::fs::FileType)> = std::fs::read_dir(dir)
        .map_err(walk)?
        .map(|e| e.and_then(|e| Ok((e.path(), e.file_type()?))))
        .collect::<Result<_, _>>()
        .map_err(walk)?;
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    for (path, kind) in entries {
        if kind.is_dir() {
            json_files(&path, out)?;
        } else if kind.is_file() && path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        } else if kind.is_symlink() {
            log::info!("{}: a symlink, not followed", path.display());
        }
    }
    Ok(())
}

/// The raw JSON of every run file of a set, without decoding. A file given
/// directly must be a run; under a directory, valid JSON that is not a run
/// is skipped, but a corrupt file is an error (it may be a truncated run).
pub fn read_raw(path: &Path) -> Result<Vec<(PathBuf, serde_json::Value)>, SetError> {
    if !path.exists() {
        return Err(SetError::Missing {
            path: path.to_owned(),
        });
    }
    if !path.is_dir() {
        let raw = read_json(path)?;
        if !looks_like_run(&raw) {
            return Err(SetError::Load(LoadError::NotARun {
                path: path.to_owned(),
                what: "no schema_version or episodes field".to_owned(),
            }));
        }
        return Ok(vec![(path.to_owned(), raw)]);
    }
    let mut files = Vec::new();
    json_files(path, &mut files)?;
    let mut raws = Vec::new();
    for file in files {
        let raw = read_json(&file)?;
        if looks_like_run(&raw) {
            raws.push((file, raw));
        } else {
            log::info!("{}: not a run file, skipped", file.display());
        }
    }
    if raws.is_empty() {
        return Err(SetError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(raws)
}

/// Decodes the raw files of a set (after the schema check); the raw JSON
/// is dropped as each file is decoded.
pub fn decode(path: &Path, raws: Vec<(PathBuf, serde_json::Value)>) -> Result<RunSet, SetError> {
    let mut runs = Vec::new();
    for (file, raw) in raws {
        let run = run_from_json(raw, &file)?;
        runs.push(LoadedRun { path: file, run });
    }
    Ok(RunSet {
        path: path.to_owned(),
        runs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_given_directly_must_be_a_run() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("notes.json");
        std::fs::write(&file, "{\"x\": 1}").unwrap();
        let err = read_raw(&file).unwrap_err();
        assert!(
            matches!(err, SetError::Load(LoadError::NotARun { .. })),
            "{err}"
        );
        std::fs::write(&file, "{\"x\": ").unwrap();
        let err = read_raw(&file).unwrap_err();
        assert!(
            matches!(err, SetError::Load(LoadError::Corrupt { .. })),
            "{err}"
        );
    }

    #[test]
    fn directories_are_searched_recursively_and_skip_other_json() {
        let dir = tempfile::tempdir().unwrap();
        let run = r#"{"schema_version": 1, "episodes": []}"#;
        std::fs::create_dir_all(dir.path().join("b/deeper")).unwrap();
        std::fs::write(dir.path().join("b/deeper/run.json"), run).unwrap();
        std::fs::write(dir.path().join("a.json"), run).unwrap();
        std::fs::write(dir.path().join("diff.json"), r#"{"metrics": []}"#).unwrap();
        std::fs::write(dir.path().join("x.folded"), "a;b 1").unwrap();
        let found: Vec<PathBuf> = read_raw(dir.path())
            .unwrap()
            .into_iter()
            .map(|(p, _)| p.strip_prefix(dir.path()).unwrap().to_owned())
            .collect();
        assert_eq!(
            found,
            [PathBuf::from("a.json"), PathBuf::from("b/deeper/run.json")]
        );
    }
}
