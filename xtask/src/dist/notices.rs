//! The third-party notice of a release tarball, generated from
//! `cargo metadata`: every crate whose code is in the binaries (the normal
//! dependencies of reaper-cli and reaper-lab for the target, plus
//! reaper-ebpf's, whose object reaper embeds), its licence expression and source, the source offer that
//! copyleft licences (inferno's CDDL-1.0) ask for, and the licence files the
//! crates ship, each distinct text once.
//!
//! Kept rather than replaced by cargo-about (0.9.3 resolves 151 crates,
//! built from source on every fresh CI machine before the first notice):
//! this generator stands on the crates cargo-about itself uses for the hard
//! parts (cargo_metadata for the graph, spdx for the expressions), runs
//! offline inside xtask, and covers what cargo-about would need per-target
//! configuration and a template for: the embedded eBPF object's dependencies
//! for bpfel-unknown-none, and the source offer inferno's CDDL-1.0 asks for.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use cargo_metadata::{DependencyKind, Metadata, MetadataCommand, Package, PackageId};
use spdx::{Expression, LicenseItem, ParseMode};

use crate::workspace::workspace_root;

/// The target the eBPF object is built for.
const EBPF_TARGET: &str = "bpfel-unknown-none";
/// File-name prefixes of the licence files crates ship (upper-cased).
const LICENCE_FILE_PREFIXES: [&str; 5] = ["LICENSE", "LICENCE", "COPYING", "NOTICE", "COPYRIGHT"];

/// What a crate's licence asks of a binary distribution beyond keeping its
/// notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Obligation {
    /// A non-copyleft choice exists (MIT, Apache-2.0, BSD, ...): keep the notice.
    Notice,
    /// Every choice is copyleft (CDDL-1.0, MPL-2.0, ...): also say where the
    /// source is.
    SourceOffer,
    /// No or unparsable licence field: a person has to look.
    Unknown,
}

/// Classifies an SPDX licence expression (cargo's `license` field).
pub fn obligation(expression: Option<&str>) -> Obligation {
    let Some(Ok(expr)) = expression.map(|e| Expression::parse_mode(e, ParseMode::LAX)) else {
        return Obligation::Unknown;
    };
    let permissive_route = expr.evaluate(|req| match &req.license {
        LicenseItem::Spdx { id, .. } => !id.is_copyleft(),
        LicenseItem::Other { .. } => false,
    });
    if permissive_route {
        Obligation::Notice
    } else {
        Obligation::SourceOffer
    }
}

/// One third-party crate in the binary.
#[derive(Debug, Clone)]
pub struct Crate {
    pub name: String,
    pub version: String,
    pub license: Option<String>,
    pub repository: Option<String>,
    /// Where cargo unpacked it (its licence files are there).
    pub dir: PathBuf,
}

impl Crate {
    fn label(&self) -> String {
        format!("{} {}", self.name, self.version)
    }

    fn crates_io(&self) -> String {
        format!("https://crates.io/crates/{}/{}", self.name, self.version)
    }

    fn download(&self) -> String {
        format!(
            "https://crates.io/api/v1/crates/{}/{}/download",
            self.name, self.version
        )
    }

    fn obligation(&self) -> Obligation {
        obligation(self.license.as_deref())
    }
}

fn metadata(target: &str) -> Result<Metadata> {
    MetadataCommand::new()
        .manifest_path(workspace_root().join("Cargo.toml"))
        .other_options(vec!["--filter-platform".to_string(), target.to_string()])
        .exec()
        .with_context(|| format!("cargo metadata --filter-platform {target}"))
}

/// Third-party packages reachable from workspace package `root` through
/// normal (not build, not dev) dependencies.
fn closure<'m>(metadata: &'m Metadata, root: &str) -> Result<Vec<&'m Package>> {
    let packages: HashMap<&PackageId, &Package> =
        metadata.packages.iter().map(|p| (&p.id, p)).collect();
    let resolve = metadata
        .resolve
        .as_ref()
        .context("cargo metadata gave no dependency graph")?;
    let nodes: HashMap<&PackageId, _> = resolve.nodes.iter().map(|n| (&n.id, n)).collect();
    let start = metadata
        .workspace_packages()
        .into_iter()
        .find(|p| p.name.as_str() == root)
        .with_context(|| format!("no workspace package {root}"))?;
    let mut seen: BTreeSet<&PackageId> = BTreeSet::new();
    let mut queue = VecDeque::from([&start.id]);
    while let Some(id) = queue.pop_front() {
        if !seen.insert(id) {
            continue;
        }
        let Some(node) = nodes.get(id) else { continue };
        for dep in &node.deps {
            if dep
                .dep_kinds
                .iter()
                .any(|k| k.kind == DependencyKind::Normal)
            {
                queue.push_back(&dep.pkg);
            }
        }
    }
    Ok(seen
        .into_iter()
        .filter(|id| !metadata.workspace_members.contains(id))
        .filter_map(|id| packages.get(id).copied())
        .collect())
}

/// The version of workspace package `name` and the third-party crates in a
/// reaper and reaper-lab binaries for `target`, sorted by name and version.
pub fn shipped_crates(target: &str) -> Result<(String, Vec<Crate>)> {
    let user = metadata(target)?;
    let ebpf = metadata(EBPF_TARGET)?;
    let version = user
        .workspace_packages()
        .into_iter()
        .find(|p| p.name.as_str() == "reaper-cli")
        .map(|p| p.version.to_string())
        .context("no reaper-cli in the workspace")?;
    let mut crates: BTreeMap<(String, String), Crate> = BTreeMap::new();
    for package in closure(&user, "reaper-cli")?
        .into_iter()
        .chain(closure(&user, "reaper-lab")?)
        .chain(closure(&ebpf, "reaper-ebpf")?)
    {
        let dir = package
            .manifest_path
            .parent()
            .map(|d| d.as_std_path().to_path_buf())
            .unwrap_or_default();
        let c = Crate {
            name: package.name.to_string(),
            version: package.version.to_string(),
            license: package.license.clone(),
            repository: package.repository.clone(),
            dir,
        };
        crates.insert((c.name.clone(), c.version.clone()), c);
    }
    Ok((version, crates.into_values().collect()))
}

/// The licence files a crate ships, sorted by name.
fn licence_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .filter(|p| {
                    p.file_name()
                        .map(|n| n.to_string_lossy().to_uppercase())
                        .is_some_and(|n| LICENCE_FILE_PREFIXES.iter().any(|x| n.starts_with(x)))
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// musl libc is linked statically by Rust's `*-linux-musl` targets; its
/// COPYRIGHT file puts it under the standard MIT licence.
const MUSL_NOTICE: &str = "musl libc (https://musl.libc.org/) is linked statically by Rust's \
`*-linux-musl` targets. Its COPYRIGHT file: \"musl as a whole is licensed under the following \
standard MIT license: Copyright © 2005-2020 Rich Felker, et al.\" followed by the MIT licence \
text, which is the same as the one in LICENSE-MIT below the copyright line. The Rust standard \
library (https://github.com/rust-lang/rust) is linked in too, under MIT OR Apache-2.0.";

/// The notice as Markdown.
pub fn render(version: &str, target: &str, crates: &[Crate]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Third-party software in reaper {version} ({target})\n\n\
         reaper itself is licensed under MIT OR Apache-2.0 (LICENSE-MIT, LICENSE-APACHE). \
         The `reaper` and `reaper-lab` binaries are statically linked and contain the {} \
         crates listed below (their own dependencies, and those of the eBPF object reaper \
         embeds), generated from \
         `cargo metadata` by `cargo xtask dist`.\n\n{MUSL_NOTICE}\n",
        crates.len()
    );
    render_source_offers(&mut out, crates);
    render_unknown(&mut out, crates);
    render_table(&mut out, crates);
    render_texts(&mut out, crates);
    out
}

fn render_source_offers(out: &mut String, crates: &[Crate]) {
    let offers: Vec<&Crate> = crates
        .iter()
        .filter(|c| c.obligation() == Obligation::SourceOffer)
        .collect();
    if offers.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "## Where the source of copyleft-licensed crates is\n\n\
         These crates are available only under licences that ask a binary distribution to say \
         how to obtain their source code. reaper uses them unmodified; their complete source, \
         as compiled into this binary, is:\n"
    );
    for c in offers {
        let _ = writeln!(
            out,
            "- **{}** ({}): {} (the `.crate` archive: {}){}",
            c.label(),
            c.license.as_deref().unwrap_or("?"),
            c.crates_io(),
            c.download(),
            c.repository
                .as_deref()
                .map_or(String::new(), |r| format!("; repository {r}")),
        );
    }
    let _ = writeln!(
        out,
        "\nTheir licence texts are in the last section, under the crate's name.\n"
    );
}

fn render_unknown(out: &mut String, crates: &[Crate]) {
    let unknown: Vec<String> = crates
        .iter()
        .filter(|c| c.obligation() == Obligation::Unknown)
        .map(Crate::label)
        .collect();
    if !unknown.is_empty() {
        let _ = writeln!(
            out,
            "## Crates without a machine-readable licence\n\nSee their licence files below: {}\n",
            unknown.join(", ")
        );
    }
}

fn render_table(out: &mut String, crates: &[Crate]) {
    let _ = writeln!(
        out,
        "## Crates\n\n| crate | version | licence | source |\n|---|---|---|---|"
    );
    for c in crates {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            c.name,
            c.version,
            c.license.as_deref().unwrap_or("(none given)"),
            c.repository.as_deref().unwrap_or(&c.crates_io()),
        );
    }
    out.push('\n');
}

/// Every distinct licence file text once, with the crates that ship it.
fn render_texts(out: &mut String, crates: &[Crate]) {
    let mut texts: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut missing = Vec::new();
    for c in crates {
        let files = licence_files(&c.dir);
        if files.is_empty() {
            missing.push(c.label());
        }
        for file in files {
            if let Ok(text) = std::fs::read_to_string(&file) {
                let name = file.file_name().unwrap_or_default().to_string_lossy();
                texts
                    .entry(text.trim().to_string())
                    .or_default()
                    .push(format!("{} ({name})", c.label()));
            }
        }
    }
    let _ = writeln!(out, "## Licence texts\n");
    if !missing.is_empty() {
        let _ = writeln!(
            out,
            "These crates ship no licence file; their licence is the standard text of the \
             SPDX identifier in the table: {}\n",
            missing.join(", ")
        );
    }
    let mut by_first_user: Vec<(Vec<String>, String)> = texts
        .into_iter()
        .map(|(text, users)| (users, text))
        .collect();
    by_first_user.sort();
    for (users, text) in by_first_user {
        let _ = writeln!(out, "### {}\n\n```text\n{text}\n```\n", users.join(", "));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn licence_obligations() {
        assert_eq!(obligation(Some("MIT OR Apache-2.0")), Obligation::Notice);
        assert_eq!(obligation(Some("MIT/Apache-2.0")), Obligation::Notice);
        assert_eq!(obligation(Some("CDDL-1.0")), Obligation::SourceOffer);
        assert_eq!(obligation(Some("MPL-2.0")), Obligation::SourceOffer);
        assert_eq!(
            obligation(Some("(MIT OR Apache-2.0) AND Unicode-3.0")),
            Obligation::Notice
        );
        assert_eq!(obligation(Some("MIT AND MPL-2.0")), Obligation::SourceOffer);
        assert_eq!(obligation(None), Obligation::Unknown);
        assert_eq!(obligation(Some("not a licence")), Obligation::Unknown);
    }

    fn krate(name: &str, license: &str) -> Crate {
        Crate {
            name: name.into(),
            version: "1.2.3".into(),
            license: Some(license.into()),
            repository: Some(format!("https://example.org/{name}")),
            dir: PathBuf::from("/nonexistent"),
        }
    }

    #[test]
    fn copyleft_crates_get_a_source_offer() {
        let text = render(
            "0.1.0",
            "x86_64-unknown-linux-musl",
            &[
                krate("inferno", "CDDL-1.0"),
                krate("anyhow", "MIT OR Apache-2.0"),
            ],
        );
        let offers = text
            .split("## Where the source")
            .nth(1)
            .expect("a source-offer section")
            .split("## Crates")
            .next()
            .unwrap();
        assert!(
            offers.contains("https://crates.io/crates/inferno/1.2.3"),
            "{offers}"
        );
        assert!(!offers.contains("anyhow"), "{offers}");
        assert!(text.contains("| anyhow | 1.2.3 | MIT OR Apache-2.0 |"));
    }
}
