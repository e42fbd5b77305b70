//! The `reaper-lab` binary's refusals: what it cannot do is said before
//! anything is downloaded, built or booted, with exit status 2.

use std::process::Command;

fn lab(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_reaper-lab"))
        .args(args)
        .env(
            "REAPER_VM_CACHE",
            std::env::temp_dir().join("reaper-lab-cli-test-cache"),
        )
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn an_ab_without_a_difference_is_refused() {
    let (code, err) = lab(&["ab", "--", "--victim", "256M"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("nothing tells A from B"), "{err}");
}

#[test]
fn record_arguments_ab_sets_are_refused() {
    let (code, err) = lab(&["ab", "--patch", "x.patch", "--", "--runs", "3"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is set by reaper-lab ab"), "{err}");
}

#[test]
fn conflicting_sources_are_usage_errors() {
    let (code, err) = lab(&[
        "ab",
        "--kernel-a",
        "bookworm",
        "--kernel-b",
        "trixie",
        "--patch",
        "p",
    ]);
    assert_eq!(code, 2, "{err}");
    let (code, err) = lab(&["ab", "--base", "HEAD"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--src"), "{err}");
}

/// A dynamically linked reaper would fail in the guest, which has no C
/// library, minutes later; it is refused first. `/bin/sh` stands for one.
#[test]
fn a_dynamic_guest_reaper_is_refused_before_any_build() {
    let sh = std::path::Path::new("/bin/sh");
    if !sh.exists() {
        return;
    }
    let patch = std::env::temp_dir().join(format!("reaper-lab-cli-{}.patch", std::process::id()));
    std::fs::write(&patch, "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n").unwrap();
    let (code, err) = lab(&[
        "ab",
        "--patch",
        patch.to_str().unwrap(),
        "--reaper",
        "/bin/sh",
        "--",
        "--victim",
        "256M",
    ]);
    std::fs::remove_file(&patch).unwrap();
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("dynamically linked") || err.contains("not a 64-bit"),
        "{err}"
    );
    assert!(
        !err.contains("downloading"),
        "refused before fetching: {err}"
    );
}
