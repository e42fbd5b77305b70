//! `reaper-lab kernel build`: a kernel from source for the VM harness.
//!
//! Source ([`source`]: Debian's `linux-source-X.Y` or `--src DIR`) → one
//! build tree per source and arch ([`tree`]); patches ([`patches`]) are
//! applied to that tree for a patched build and reversed after it, so the
//! patched build reuses the unpatched build's objects and only recompiles
//! what the patches touch; config ([`config`]): tinyconfig + the
//! repository's fragments; image ([`make`]). Images and `.config`s are
//! cached by (source version, arch, fragment hash, patch-set hash) under
//! `$REAPER_VM_CACHE/kernel-build/<source>-<arch>/out/`.

pub mod config;
pub mod fragments;
pub mod git;
pub mod make;
pub mod mbox;
pub mod patches;
pub mod source;
pub mod tree;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::arch::Arch;
use config::BaseConfig;
use make::Make;
use patches::Patch;
use source::SourceChoice;

/// `reaper-lab kernel` arguments.
#[derive(Debug, clap::Args)]
pub struct KernelArgs {
    #[command(subcommand)]
    command: KernelCommand,
}

#[derive(Debug, clap::Subcommand)]
enum KernelCommand {
    /// Build a kernel image + .config that `reaper-lab vm --kernel PATH` boots.
    Build(KernelBuildArgs),
}

/// `reaper-lab kernel build` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct KernelBuildArgs {
    #[command(flatten)]
    pub build: BuildArgs,
    /// With --src DIR, a git tree: build this revision of it (checked out
    /// into the build cache; DIR, its index and its checkout are not
    /// touched).
    #[arg(long, value_name = "REV", requires = "src")]
    pub rev: Option<String>,
}

/// `reaper-lab kernel build` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct BuildArgs {
    /// Debian kernel source series (the `linux-source-X.Y` package).
    #[arg(long, default_value = "6.1", conflicts_with = "src")]
    pub source: String,
    /// Build this kernel tree instead: a plain tree is copied once into the
    /// build cache; a git tree is built at a revision (--rev, or ab's --base
    /// and --candidate) with its objects in a build directory of the cache
    /// (O=). DIR itself is never written.
    #[arg(long, value_name = "DIR")]
    pub src: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Arch::X86_64)]
    pub arch: Arch,
    /// A patch to apply (ab: to B): a plain diff, one mail, or an mbox series (one patch
    /// per mail with a diff), applied with `patch -p1`, in order (repeatable).
    #[arg(long = "patch", value_name = "FILE")]
    pub patches: Vec<PathBuf>,
    /// Your kernel's .config, used instead of tinyconfig as the base that
    /// reaper's fragments are merged onto; every option reaper needs is then
    /// checked. Builds in its own tree.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Extra config fragment merged after reaper's, in order (repeatable),
    /// e.g. `kernel/variants/no-ftrace-syscalls.config`. A variant builds in
    /// its own tree (named by the fragments' file names), so the default
    /// tree stays built and incremental.
    #[arg(long = "fragment", value_name = "FRAGMENT")]
    pub fragments: Vec<PathBuf>,
    /// Parallel make jobs (default: CPUs + 1).
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,
}

impl BuildArgs {
    /// The source: `--src DIR` at `rev` (a git revision) or as it is, else
    /// Debian's `linux-source-<--source>`.
    pub fn source_choice(&self, rev: Option<&str>) -> SourceChoice {
        match (&self.src, rev) {
            (Some(dir), Some(rev)) => SourceChoice::Git {
                dir: dir.clone(),
                rev: rev.to_string(),
            },
            (Some(dir), None) => SourceChoice::Dir(dir.clone()),
            (None, _) => SourceChoice::Debian {
                series: self.source.clone(),
            },
        }
    }
}

/// What one build request is.
#[derive(Debug, Clone)]
pub struct BuildSpec {
    pub source: SourceChoice,
    pub arch: Arch,
    pub patches: Vec<Patch>,
    /// The user's `.config`, instead of tinyconfig.
    pub base_config: Option<BaseConfig>,
    /// Config fragments merged after reaper's (a config variant).
    pub extra_fragments: Vec<PathBuf>,
    /// `make -jN`.
    pub jobs: usize,
}

/// A finished (or cached) build, as recorded in `build.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Built {
    pub source: String,
    pub arch: String,
    /// sha256 (12 hex) of the config fragments (the repository's and the
    /// variant's).
    pub fragments_hash: String,
    /// The variant's extra fragments (file names), empty for the default.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_fragments: Vec<String>,
    /// The user's base `.config` (`--config`), when one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_config: Option<PathBuf>,
    /// The commit built, for a revision of a git tree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// sha256 (12 hex) of the resulting .config.
    pub config_hash: String,
    /// (file name, subject, sha256) per patch, in order.
    pub patches: Vec<(String, String, String)>,
    pub image: PathBuf,
    pub config: PathBuf,
    /// Wall time of the make run that produced the image, and whether it
    /// started from a tree already built (incremental).
    pub build_seconds: f64,
    pub incremental: bool,
    /// Objects make compiled for the image (`CC`/`AS` steps; absent in
    /// records written before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objects: Option<usize>,
    /// Wall time of the whole build request: source download and unpacking,
    /// waiting for the tree, configuration, make, copying out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_seconds: Option<f64>,
    /// `make kernelrelease`.
    pub release: String,
    /// This request found the build in the cache (not recorded).
    #[serde(skip)]
    pub cached: bool,
}

/// `reaper-lab kernel …`.
pub fn run(args: KernelArgs) -> Result<ExitCode> {
    match args.command {
        KernelCommand::Build(KernelBuildArgs { build: b, rev }) => {
            let spec = BuildSpec {
                source: b.source_choice(rev.as_deref()),
                arch: b.arch,
                patches: patches::read_all(&b.patches)?,
                base_config: b.config.as_deref().map(BaseConfig::read).transpose()?,
                extra_fragments: b.fragments.clone(),
                jobs: b.jobs.unwrap_or_else(make::default_jobs),
            };
            let built = build(&spec)?;
            eprintln!(
                "reaper-lab: kernel: {} {} ({}{}): image {}\n  boot it: reaper-lab vm --arch {} --kernel {} --kernel-config {} -- uname -a",
                built.source,
                built.arch,
                if built.patches.is_empty() {
                    "no patches".to_string()
                } else {
                    format!("{} patch(es)", built.patches.len())
                },
                variant_note(&built.extra_fragments),
                built.image.display(),
                built.arch,
                built.image.display(),
                built.config.display()
            );
            println!("{}", built.image.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// What a build builds, for its progress lines: source, arch, patches and
/// variant.
fn build_what(source: &str, spec: &BuildSpec, extra_names: &[String]) -> String {
    format!(
        "{} {} ({}{})",
        source,
        spec.arch,
        if spec.patches.is_empty() {
            "no patches".to_string()
        } else {
            spec.patches
                .iter()
                .map(|p| p.subject.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        },
        variant_note(extra_names)
    )
}

/// Builds (or finds in the cache) the kernel of `spec`.
pub fn build(spec: &BuildSpec) -> Result<Built> {
    let requested = Instant::now();
    make::ensure_build_deps(spec.arch)?;
    let cache = crate::paths::cache_dir()?;
    let src = source::resolve(&spec.source, &cache)?;
    let (fragments, frag_hash) = config_fragments(spec)?;
    let set_hash = patches::set_hash(&spec.patches);
    let (root, out) = build_dirs(&cache, &src, spec, &frag_hash, &set_hash);
    let record = out.join("build.json");
    if let Some(built) = cached(&record) {
        return Ok(report_cached(built, spec, &set_hash, &out));
    }
    let tree = tree::Tree::open(
        &root,
        &tree::tree_name(&spec.extra_fragments, spec.base_config.is_some()),
        &src,
    )?;
    let tree_ready_seconds = requested.elapsed().as_secs_f64();
    // Another build may have produced it while this one waited for the lock.
    if let Some(built) = cached(&record) {
        return Ok(report_cached(built, spec, &set_hash, &out));
    }
    let make = make_in(&tree, spec);
    let incremental = make.out_dir().join("vmlinux").exists();
    let applied = tree.apply(&spec.patches)?;
    config::configure(&make, &fragments, spec.base_config.as_ref())?;
    let extra_names = file_names(&spec.extra_fragments);
    let what = build_what(&src.description, spec, &extra_names);
    let configured_seconds = requested.elapsed().as_secs_f64() - tree_ready_seconds;
    let started = Instant::now();
    let (image, objects) = make.build_image(&what)?;
    let build_seconds = started.elapsed().as_secs_f64();
    let release = release(&make)?;
    let (image_out, config_out) = copy_outputs(&make, &image, &out)?;
    applied.reverse()?;
    let built = Built {
        source: src.description.clone(),
        arch: spec.arch.to_string(),
        fragments_hash: frag_hash,
        extra_fragments: extra_names,
        base_config: spec.base_config.as_ref().map(|b| b.path.clone()),
        commit: src.commit.as_ref().map(|c| c.sha.clone()),
        config_hash: config::file_hash(&config_out)?,
        patches: patch_records(&spec.patches),
        image: image_out,
        config: config_out,
        build_seconds,
        incremental,
        objects: Some(objects),
        total_seconds: Some(requested.elapsed().as_secs_f64()),
        release,
        cached: false,
    };
    say_build_time(&built, &what, tree_ready_seconds, configured_seconds);
    std::fs::write(&record, serde_json::to_string_pretty(&built)?)
        .with_context(|| format!("writing {}", record.display()))?;
    Ok(built)
}

/// `make` for `spec` in the build `tree`.
fn make_in(tree: &tree::Tree, spec: &BuildSpec) -> Make {
    Make {
        tree: tree.path.clone(),
        objdir: tree.objdir.clone(),
        arch: spec.arch,
        jobs: spec.jobs,
    }
}

/// Every config fragment of `spec` (reaper's and the extra ones), and the
/// hash that names the configuration they and the base config make.
fn config_fragments(spec: &BuildSpec) -> Result<(Vec<fragments::Fragment>, String)> {
    let fragments = fragments::fragments(spec.arch, &absolute_fragments(spec)?)?;
    let hash = fragments::fragments_hash(
        &fragments,
        spec.base_config.as_ref().map(|b| b.text.as_str()),
    );
    Ok((fragments, hash))
}

/// `spec`'s extra config fragments as absolute paths: merge_config.sh runs
/// in the build tree.
fn absolute_fragments(spec: &BuildSpec) -> Result<Vec<PathBuf>> {
    spec.extra_fragments
        .iter()
        .map(|f| {
            f.canonicalize()
                .with_context(|| format!("the config fragment {}", f.display()))
        })
        .collect()
}

/// The source's build root in the cache, and the output directory of this
/// configuration and patch set (named by the revision and both hashes).
fn build_dirs(
    cache: &Path,
    src: &source::Source,
    spec: &BuildSpec,
    frag_hash: &str,
    set_hash: &str,
) -> (PathBuf, PathBuf) {
    let root = cache
        .join("kernel-build")
        .join(format!("{}-{}", src.key, spec.arch));
    let revision = src
        .commit
        .as_ref()
        .map_or(String::new(), |c| format!("rev-{}-", &c.sha[..12]));
    let out = root
        .join("out")
        .join(format!("{revision}cfg-{frag_hash}-patches-{set_hash}"));
    (root, out)
}

/// Copies the built `image` and the tree's `.config` into `out`; hands
/// back where they now are.
fn copy_outputs(make: &Make, image: &Path, out: &Path) -> Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let image_out = out.join(image.file_name().context("image has no file name")?);
    let config_out = out.join("config");
    std::fs::copy(image, &image_out).with_context(|| format!("copying {}", image.display()))?;
    std::fs::copy(make.out_dir().join(".config"), &config_out).context("copying .config")?;
    Ok((image_out, config_out))
}

/// Prints one line a CI log can be read for: the first-build time on a
/// fresh machine is this line's, not the progress lines'.
fn say_build_time(built: &Built, what: &str, tree_ready_seconds: f64, configured_seconds: f64) {
    eprintln!(
        "reaper-lab: kernel: {} build of {what}: {:.0} s wall in total (source and tree {:.0} s, \
         config {:.0} s, make {:.0} s, {} objects compiled)",
        if built.incremental {
            "incremental"
        } else {
            "first"
        },
        built.total_seconds.unwrap_or_default(),
        tree_ready_seconds,
        configured_seconds,
        built.build_seconds,
        built.objects.unwrap_or_default(),
    );
}

/// The file names of `paths`, for records and messages.
fn file_names(paths: &[PathBuf]) -> Vec<String> {
    paths
        .iter()
        .map(|p| {
            p.file_name().map_or_else(
                || p.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            )
        })
        .collect()
}

/// ", config + a.config + b.config" for a variant, "" for the default.
fn variant_note(extra: &[String]) -> String {
    if extra.is_empty() {
        String::new()
    } else {
        format!(", config + {}", extra.join(" + "))
    }
}

/// (label, subject, sha256) of each patch, as `build.json` keeps them.
fn patch_records(patches: &[Patch]) -> Vec<(String, String, String)> {
    patches
        .iter()
        .map(|p| (p.label(), p.subject.clone(), p.sha256.clone()))
        .collect()
}

/// A build found in the cache, named after this request's patch files (the
/// cache key is their contents, so an earlier request may have named them
/// otherwise).
fn report_cached(mut built: Built, spec: &BuildSpec, set_hash: &str, out: &Path) -> Built {
    built.cached = true;
    built.patches = patch_records(&spec.patches);
    eprintln!(
        "reaper-lab: kernel: {} {} with patches {set_hash}: cached ({})",
        built.source,
        built.arch,
        out.display()
    );
    built
}

fn cached(record: &Path) -> Option<Built> {
    let built: Built = serde_json::from_slice(&std::fs::read(record).ok()?).ok()?;
    (built.image.is_file() && built.config.is_file()).then_some(built)
}

fn release(make: &Make) -> Result<String> {
    let cmd = make.command(&["-s", "kernelrelease"]);
    Ok(crate::apt::run_captured(cmd, "make kernelrelease")?
        .trim()
        .to_string())
}
