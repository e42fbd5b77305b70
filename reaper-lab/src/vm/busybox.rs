//! The guest's userland: Debian's static busybox for the guest architecture,
//! fetched from the host's own suite into the VM cache.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::debian;
use crate::apt::sources;
use crate::arch::Arch;

/// The busybox binary inside the `busybox-static` package.
const BUSYBOX_PATH: &str = "bin/busybox";

#[derive(Serialize, Deserialize)]
struct Memo {
    path: PathBuf,
}

/// The path of a static busybox for `arch`, downloading it on first use.
pub fn busybox(arch: Arch) -> Result<PathBuf> {
    let cache = crate::paths::cache_dir()?;
    let memo = cache
        .join("resolved")
        .join(format!("busybox-{}.json", arch.debian()));
    let what = format!("busybox-static:{}", arch.debian());
    let found = debian::memoized(
        &memo,
        &what,
        |m: &Memo| m.path.is_file(),
        || {
            let suite = sources::host_codename()?;
            let root = debian::suite_root(&cache, &suite)?;
            debian::refresh(&root)?;
            let record = debian::candidate(&root, "busybox-static", arch.debian())?;
            let dir = debian::fetch_unpacked(&root, &cache, &record, arch.debian())?;
            let path = dir.join(BUSYBOX_PATH);
            if !path.is_file() {
                bail!("busybox-static:{} has no {BUSYBOX_PATH}", arch.debian());
            }
            Ok(Memo { path })
        },
    )
    .with_context(|| format!("getting {what} for the guest"))?;
    Ok(found.path)
}
