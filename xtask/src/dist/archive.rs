//! Writing a release tarball from a staging directory, and reading one file
//! back out of it (the VM harness runs the binary the tarball holds).

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;

/// Files under `dir`, relative to it, sorted (so the archive's order does not
/// depend on the file system).
fn files_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in
            std::fs::read_dir(&current).with_context(|| format!("listing {}", current.display()))?
        {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path.strip_prefix(dir)?.to_path_buf());
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Writes `staging`'s files into a gzip'd tar at `dest`, under `top/`.
/// Owners are root, modes 0755 for executables and 0644 otherwise, and every
/// mtime is `mtime`, so two builds of the same files give the same archive.
pub fn write_tar_gz(dest: &Path, top: &str, staging: &Path, mtime: u64) -> Result<()> {
    let tmp = dest.with_extension("tmp");
    let file = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let mut tar = tar::Builder::new(GzEncoder::new(file, Compression::best()));
    for relative in files_under(staging)? {
        let source = staging.join(&relative);
        let mut data = Vec::new();
        File::open(&source)
            .and_then(|mut f| f.read_to_end(&mut data))
            .with_context(|| format!("reading {}", source.display()))?;
        let executable = std::fs::metadata(&source)?.permissions().mode() & 0o111 != 0;
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(if executable { 0o755 } else { 0o644 });
        header.set_mtime(mtime);
        header.set_uid(0);
        header.set_gid(0);
        tar.append_data(&mut header, Path::new(top).join(&relative), data.as_slice())
            .with_context(|| format!("adding {} to {}", relative.display(), dest.display()))?;
    }
    let mut gz = tar.into_inner().context("finishing the tar stream")?;
    gz.flush()?;
    gz.finish().context("finishing the gzip stream")?;
    std::fs::rename(&tmp, dest).with_context(|| format!("renaming to {}", dest.display()))
}

/// Extracts the member `member` of the tarball to `dest`, keeping its mode.
pub fn extract_file(tarball: &Path, member: &Path, dest: &Path) -> Result<()> {
    let file = File::open(tarball).with_context(|| format!("opening {}", tarball.display()))?;
    let mut archive = tar::Archive::new(GzDecoder::new(file));
    for entry in archive.entries()? {
        let mut entry = entry?;
        if entry.path()? == member {
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let _ = std::fs::remove_file(dest);
            entry
                .unpack(dest)
                .with_context(|| format!("unpacking {} to {}", member.display(), dest.display()))?;
            return Ok(());
        }
    }
    bail!("{} has no {}", tarball.display(), member.display())
}

/// Member paths of a tarball, in order.
pub fn list(tarball: &Path) -> Result<Vec<PathBuf>> {
    let file = File::open(tarball).with_context(|| format!("opening {}", tarball.display()))?;
    let mut archive = tar::Archive::new(GzDecoder::new(file));
    archive
        .entries()?
        .map(|e| Ok(e?.path()?.into_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_modes_and_is_reproducible() {
        let dir = std::env::temp_dir().join(format!("xtask-dist-archive-{}", std::process::id()));
        let staging = dir.join("staging");
        std::fs::create_dir_all(staging.join("man/man1")).unwrap();
        std::fs::write(staging.join("reaper"), b"#!/bin/sh\n").unwrap();
        std::fs::set_permissions(
            staging.join("reaper"),
            std::fs::Permissions::from_mode(0o700),
        )
        .unwrap();
        std::fs::write(staging.join("man/man1/reaper.1"), b".TH REAPER 1\n").unwrap();
        let (a, b) = (dir.join("a.tar.gz"), dir.join("b.tar.gz"));
        write_tar_gz(&a, "top", &staging, 1_700_000_000).unwrap();
        write_tar_gz(&b, "top", &staging, 1_700_000_000).unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        assert_eq!(
            list(&a).unwrap(),
            [
                PathBuf::from("top/man/man1/reaper.1"),
                PathBuf::from("top/reaper")
            ]
        );
        let out = dir.join("out/reaper");
        extract_file(&a, Path::new("top/reaper"), &out).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"#!/bin/sh\n");
        assert_eq!(
            std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
            0o755
        );
        assert!(extract_file(&a, Path::new("top/missing"), &out).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
