//! Loading one side of a comparison: a run file, or every run file found
//! recursively under a directory (`reaper record -o DIR` output, a directory
//! of such directories, or loose `*.json` runs).
//!
//! A side is untrusted input, loaded in three steps so nothing is decoded
//! before everything is known to fit:
//! 1. [`list`]: the directory is walked through descriptors, never through
//!    a symlink, and only regular `*.json` files are kept, with their size
//!    and inode; the sizes of every side are checked against `--max-input`
//!    before any file is read;
//! 2. [`scan`]: each file's top-level `schema_version` and `episodes` are
//!    read (`report::load::Header`, no memory kept), so files that are not
//!    runs are skipped and the sides' schema versions compared before the
//!    full decode (a side of a newer schema is incomparable, not a decode
//!    error);
//! 3. [`decode`]: each run is decoded through the guard into the typed
//!    model, opened again by the same names and refused if it is no longer
//!    the inode listed.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use crate::input::Budget;
use crate::input::open::{self, Identity, Opened};
use crate::model::Run;
use crate::report::load::{LoadError, Source, decode_run, read_checked_header};

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

/// Directories below a side's path walked at most: `record -o` writes one
/// level, sets of sets two; deeper is not a run set reaper wrote.
const MAX_DEPTH: usize = 16;
/// Directory entries looked at per side: far more than any run set, few
/// enough that listing them stays instant.
const MAX_ENTRIES: usize = 100_000;
/// Every file listed counts at least this much against `--max-input`, so a
/// million tiny files cannot cost a million opens.
const MIN_FILE_CHARGE: u64 = 4 << 10;

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
    /// Not a file or directory reaper reads.
    #[error("{}: {what}; not a run file or a directory of runs", path.display())]
    NotReadable {
        /// The path.
        path: PathBuf,
        /// What it is.
        what: String,
    },
    /// A run file failed to load.
    #[error(transparent)]
    Load(#[from] LoadError),
}

/// A `*.json` file found by [`list`].
#[derive(Debug)]
struct Found {
    /// For people: the side's path joined with `names`.
    path: PathBuf,
    /// From the side's directory (empty: the side's path is this file).
    names: Vec<PathBuf>,
    /// Its inode and size when listed.
    id: Identity,
}

/// A side's files, listed but not read.
#[derive(Debug)]
pub struct Listed {
    path: PathBuf,
    /// `O_PATH` descriptor of the side's path (a directory or the file).
    root: OwnedFd,
    /// The path is a file (which must be a run), not a directory.
    given_file: bool,
    files: Vec<Found>,
}

impl Listed {
    /// Bytes this side will read, each file counted at least
    /// [`MIN_FILE_CHARGE`].
    pub fn bytes(&self) -> u64 {
        self.files
            .iter()
            .map(|f| f.id.size.max(MIN_FILE_CHARGE))
            .fold(0, u64::saturating_add)
    }
}

/// A side whose headers were read: its run files and their versions.
#[derive(Debug)]
pub struct Scanned {
    listed: Listed,
    /// Indices into `listed.files` of the runs, with their versions.
    runs: Vec<(usize, Option<u64>)>,
}

impl Scanned {
    /// Each run file's path and schema version (`None`: not a number).
    pub fn versions(&self) -> impl Iterator<Item = (&Path, Option<u64>)> {
        self.runs
            .iter()
            .map(|&(i, v)| (self.listed.files[i].path.as_path(), v))
    }
}

/// Lists a side (step 1).
pub fn list(path: &Path) -> Result<Listed, SetError> {
    let (root, kind, id) = open::handle(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            SetError::Missing {
                path: path.to_owned(),
            }
        } else {
            SetError::Walk {
                path: path.to_owned(),
                source,
            }
        }
    })?;
    let mut files = Vec::new();
    match kind {
        rustix::fs::FileType::RegularFile => files.push(Found {
            path: path.to_owned(),
            names: Vec::new(),
            id,
        }),
        rustix::fs::FileType::Directory => {
            walk(&root, path, &mut Vec::new(), &mut files, &mut 0)?;
        }
        other => {
            return Err(SetError::NotReadable {
                path: path.to_owned(),
                what: format!("{}, not a regular file", open::describe(other)),
            });
        }
    }
    Ok(Listed {
        path: path.to_owned(),
        given_file: kind == rustix::fs::FileType::RegularFile,
        root,
        files,
    })
}

/// Collects the regular `*.json` files under `dir` (at `names` below the
/// side's path), sorted by path.
fn walk(
    dir: &OwnedFd,
    side: &Path,
    names: &mut Vec<PathBuf>,
    out: &mut Vec<Found>,
    entries: &mut usize,
) -> Result<(), SetError> {
    let here: PathBuf = std::iter::once(side.to_owned())
        .chain(names.iter().cloned())
        .collect();
    let walk_error = |source| SetError::Walk {
        path: here.clone(),
        source,
    };
    if names.len() > MAX_DEPTH {
        return Err(walk_error(std::io::Error::other(format!(
            "directories nested more than {MAX_DEPTH} deep; no run set reaper writes is"
        ))));
    }
    for name in open::list_dir(dir).map_err(walk_error)? {
        *entries += 1;
        if *entries > MAX_ENTRIES {
            return Err(walk_error(std::io::Error::other(format!(
                "more than {MAX_ENTRIES} entries; no run set reaper writes has that many"
            ))));
        }
        let path = here.join(&name);
        match open::open_in(dir, &name).map_err(walk_error)? {
            Opened::Dir(sub) => {
                names.push(name);
                let walked = walk(&sub, side, names, out, entries);
                names.pop();
                walked?;
            }
            Opened::File(_, id) if name.extension().is_some_and(|e| e == "json") => {
                let mut names = names.clone();
                names.push(name);
                out.push(Found { path, names, id });
            }
            Opened::Other(rustix::fs::FileType::Symlink) => {
                log::info!("{}: a symlink, not followed", path.display());
            }
            _ => {}
        }
    }
    Ok(())
}

/// Reads the headers of a listed side (step 2), charging its bytes. A file
/// given directly must be a run; under a directory, valid JSON that is not
/// a run is skipped, but a corrupt file is an error (it may be a truncated
/// run).
pub fn scan(listed: Listed, budget: &Budget) -> Result<Scanned, SetError> {
    let mut runs = Vec::new();
    for (i, found) in listed.files.iter().enumerate() {
        let file = open::open_found(&listed.root, &listed.path, &found.names, found.id).map_err(
            |source| LoadError::Read {
                path: found.path.clone(),
                source,
            },
        )?;
        let (_, header) = read_checked_header(file, found.id, &found.path, budget)?;
        if !header.looks_like_run() {
            if listed.given_file {
                return Err(SetError::Load(LoadError::NotARun {
                    path: found.path.clone(),
                    what: "no schema_version or episodes field".to_owned(),
                }));
            }
            log::info!("{}: not a run file, skipped", found.path.display());
            continue;
        }
        let version = header.schema_version(&found.path).ok();
        runs.push((i, version));
    }
    if runs.is_empty() {
        return Err(SetError::Empty { path: listed.path });
    }
    Ok(Scanned { listed, runs })
}

/// Decodes every run of a scanned side (step 3).
pub fn decode(scanned: Scanned, budget: &Budget) -> Result<RunSet, SetError> {
    let Scanned { listed, runs } = scanned;
    let mut loaded = Vec::with_capacity(runs.len());
    for (i, version) in runs {
        let found = &listed.files[i];
        let version = version.ok_or_else(|| LoadError::NotARun {
            path: found.path.clone(),
            what: "schema_version is not a number".to_owned(),
        })?;
        let file = open::open_found(&listed.root, &listed.path, &found.names, found.id).map_err(
            |source| LoadError::Read {
                path: found.path.clone(),
                source,
            },
        )?;
        let mut source = Source::of(file, found.id.size, &found.path)?;
        let run = decode_run(&mut source, version, &found.path, budget)?;
        loaded.push(LoadedRun {
            path: found.path.clone(),
            run,
        });
    }
    Ok(RunSet {
        path: listed.path,
        runs: loaded,
    })
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
            .distinct(|r| r.recording.scenario.label().to_owned())
            .join(", ");
        format!("{kernels} {scenarios}")
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn listed_names(path: &Path) -> Vec<PathBuf> {
        list(path)
            .unwrap()
            .files
            .iter()
            .map(|f| f.path.strip_prefix(path).unwrap().to_owned())
            .collect()
    }

    #[test]
    fn a_file_given_directly_must_be_a_run() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("notes.json");
        std::fs::write(&file, "{\"x\": 1}").unwrap();
        let budget = Budget::default();
        let err = scan(list(&file).unwrap(), &budget).unwrap_err();
        assert!(
            matches!(err, SetError::Load(LoadError::NotARun { .. })),
            "{err}"
        );
        std::fs::write(&file, "{\"x\": ").unwrap();
        let err = scan(list(&file).unwrap(), &budget).unwrap_err();
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
        symlink("/dev/zero", dir.path().join("z.json")).unwrap();
        symlink(dir.path().join("b"), dir.path().join("loop")).unwrap();
        assert_eq!(
            listed_names(dir.path()),
            [
                PathBuf::from("a.json"),
                "b/deeper/run.json".into(),
                "diff.json".into()
            ]
        );
        let scanned = scan(list(dir.path()).unwrap(), &Budget::default()).unwrap();
        let found: Vec<&Path> = scanned.versions().map(|(p, _)| p).collect();
        assert_eq!(
            found,
            [
                dir.path().join("a.json"),
                dir.path().join("b/deeper/run.json")
            ]
        );
    }

    #[test]
    fn a_file_replaced_after_listing_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let run = r#"{"schema_version": 1, "episodes": []}"#;
        std::fs::write(dir.path().join("a.json"), run).unwrap();
        let listed = list(dir.path()).unwrap();
        std::fs::remove_file(dir.path().join("a.json")).unwrap();
        symlink("/etc/passwd", dir.path().join("a.json")).unwrap();
        let err = scan(listed, &Budget::default()).unwrap_err();
        assert!(err.to_string().contains("a.json"), "{err}");
    }
}
