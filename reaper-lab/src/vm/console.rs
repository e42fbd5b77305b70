//! Reading the guest's serial console: the init's marker lines (ready, exit
//! status, the `/out` payload), kernel panics and oopses, and warnings.
//!
//! The parser is pure: it takes lines and returns what each one means, so it
//! is tested on recorded console streams without booting anything.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, bail};
use base64::Engine;

use super::guest;

/// A fatal kernel event seen on the console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fatal {
    Panic(String),
    Oops(String),
}

/// What one console line means to the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Ordinary output: show it.
    Output,
    /// The init is about to run the command.
    Ready { release: String, machine: String },
    /// The command finished with this status.
    Exit(i32),
    /// The `/out` payload starts.
    PayloadBegin,
    /// A line of the `/out` payload: do not show it.
    Payload,
    /// The payload is complete.
    PayloadEnd,
    /// A kernel panic or oops.
    Fatal(Fatal),
    /// A kernel warning (WARN, soft lockup, RCU stall): shown and reported,
    /// not fatal, because TCG's slowness can cause the latter two.
    Warning(String),
}

/// Follows one run's console.
pub struct ConsoleParser {
    prefix: String,
    in_payload: bool,
    payload: String,
    corrupt: Vec<String>,
}

impl ConsoleParser {
    pub fn new(nonce: &str) -> Self {
        ConsoleParser {
            prefix: guest::marker_prefix(nonce),
            in_payload: false,
            payload: String::new(),
            corrupt: Vec::new(),
        }
    }

    /// Classifies one line (without its newline; `\r` is ignored).
    pub fn feed(&mut self, line: &str) -> Event {
        let line = line.trim_end_matches(['\r', '\n']);
        if let Some(event) = self.marker(line) {
            return event;
        }
        if let Some(message) = kernel_message(line) {
            if let Some(fatal) = classify_fatal(message) {
                return Event::Fatal(fatal);
            }
            if is_warning(message) {
                return Event::Warning(message.to_string());
            }
        }
        if self.in_payload {
            let chunk = line.trim();
            if chunk.bytes().all(is_base64_byte) {
                self.payload.push_str(chunk);
                return Event::Payload;
            }
            self.corrupt.push(line.to_string());
        }
        Event::Output
    }

    fn marker(&mut self, line: &str) -> Option<Event> {
        // Junk (e.g. a kernel message without newline) may precede a marker.
        let at = line.find(&self.prefix)?;
        let rest = line[at + self.prefix.len()..].trim();
        let (word, args) = rest.split_once(' ').unwrap_or((rest, ""));
        let event = match word {
            guest::READY => {
                let mut parts = args.split_whitespace();
                Event::Ready {
                    release: parts.next().unwrap_or_default().to_string(),
                    machine: parts.next().unwrap_or_default().to_string(),
                }
            }
            guest::EXIT => Event::Exit(args.trim().parse().ok()?),
            guest::OUT_BEGIN => {
                self.in_payload = true;
                self.payload.clear();
                Event::PayloadBegin
            }
            guest::OUT_END => {
                self.in_payload = false;
                Event::PayloadEnd
            }
            _ => return None,
        };
        Some(event)
    }

    /// Decodes the payload collected between the markers into the bytes of
    /// the tar archive.
    pub fn payload_tar(&self) -> Result<Vec<u8>> {
        if !self.corrupt.is_empty() {
            bail!(
                "the /out payload was interleaved with other console output ({} line(s), \
                 first: {:?}); rerun, or write less to the console while the command ends",
                self.corrupt.len(),
                self.corrupt[0]
            );
        }
        let gz = base64::engine::general_purpose::STANDARD
            .decode(self.payload.as_bytes())
            .context("the /out payload is not valid base64")?;
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(gz.as_slice())
            .read_to_end(&mut tar)
            .context("the /out payload is not valid gzip")?;
        Ok(tar)
    }
}

fn is_base64_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')
}

/// The text of a kernel log line (after its `[    1.234567] ` timestamp),
/// wherever it starts in the line. Userspace output has no timestamp, so
/// "BUG:" printed by a test is not taken for a kernel bug.
pub fn kernel_message(line: &str) -> Option<&str> {
    let mut search = line;
    while let Some(open) = search.find('[') {
        let after = &search[open + 1..];
        let close = after.find(']')?;
        let stamp = after[..close].trim_start();
        let is_time = stamp.split_once('.').is_some_and(|(s, us)| {
            !s.is_empty()
                && !us.is_empty()
                && s.bytes().all(|b| b.is_ascii_digit())
                && us.bytes().all(|b| b.is_ascii_digit())
        });
        if is_time {
            return Some(after[close + 1..].trim_start());
        }
        search = after;
    }
    None
}

fn classify_fatal(message: &str) -> Option<Fatal> {
    if message.starts_with("Kernel panic - not syncing") {
        return Some(Fatal::Panic(message.to_string()));
    }
    let oops = message.starts_with("Oops")
        || message.starts_with("BUG: ")
        || message.starts_with("Internal error: Oops")
        || message.starts_with("Unable to handle kernel")
        || message.starts_with("general protection fault");
    oops.then(|| Fatal::Oops(message.to_string()))
}

fn is_warning(message: &str) -> bool {
    message.starts_with("WARNING: CPU:")
        || message.contains("BUG: soft lockup")
        || message.contains("self-detected stall")
        || message.contains("detected stalls on CPUs")
}

/// Unpacks the payload's tar into `dir`.
pub fn unpack_tar(tar: &[u8], dir: &Path) -> Result<usize> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut archive = tar::Archive::new(tar);
    archive.set_preserve_permissions(false);
    archive.set_overwrite(true);
    let mut files = 0;
    for entry in archive
        .entries()
        .context("reading the /out tar from the guest")?
    {
        let mut entry = entry.context("reading an entry of the /out tar")?;
        if entry.header().entry_type().is_file() {
            files += 1;
        }
        entry
            .unpack_in(dir)
            .with_context(|| format!("unpacking the guest's /out into {}", dir.display()))?;
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const NONCE: &str = "0123456789abcdef";

    fn marker(rest: &str) -> String {
        format!("{}{rest}", guest::marker_prefix(NONCE))
    }

    fn tar_gz_base64(files: &[(&str, &[u8])]) -> String {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, data) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, name, *data).unwrap();
        }
        let tar = builder.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        let encoded = base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap());
        // busybox base64 wraps at 76 columns.
        encoded
            .as_bytes()
            .chunks(76)
            .map(|c| std::str::from_utf8(c).unwrap().to_string() + "\n")
            .collect()
    }

    #[test]
    fn markers_give_ready_and_exit_status() {
        let mut p = ConsoleParser::new(NONCE);
        assert_eq!(p.feed("[    0.000000] Linux version 6.1.0"), Event::Output);
        assert_eq!(
            p.feed(&(marker("READY 6.1.0-50-cloud-amd64 x86_64") + "\r")),
            Event::Ready {
                release: "6.1.0-50-cloud-amd64".into(),
                machine: "x86_64".into()
            }
        );
        assert_eq!(
            p.feed("Linux reaper-vm 6.1.0 x86_64 GNU/Linux"),
            Event::Output
        );
        assert_eq!(p.feed(&marker("EXIT 3")), Event::Exit(3));
    }

    #[test]
    fn markers_with_another_nonce_or_junk_before_them() {
        let mut p = ConsoleParser::new(NONCE);
        assert_eq!(
            p.feed("@@reaper-vm:ffffffffffffffff@@ EXIT 0"),
            Event::Output
        );
        let junk = format!("[   3.1] random: crng init done{}", marker("EXIT 0"));
        assert_eq!(p.feed(&junk), Event::Exit(0));
        assert_eq!(p.feed(&marker("EXIT notanumber")), Event::Output);
    }

    #[test]
    fn panic_and_oops_are_fatal_but_warn_is_not() {
        let mut p = ConsoleParser::new(NONCE);
        let panic = "[    2.5] Kernel panic - not syncing: VFS: Unable to mount root fs";
        assert!(matches!(p.feed(panic), Event::Fatal(Fatal::Panic(_))));
        let oops = "[   10.000001] BUG: kernel NULL pointer dereference, address: 0000000000000000";
        assert!(matches!(p.feed(oops), Event::Fatal(Fatal::Oops(_))));
        let arm = "[ 12.1] Internal error: Oops: 0000000096000004 [#1] SMP";
        assert!(matches!(p.feed(arm), Event::Fatal(Fatal::Oops(_))));
        let warn = "[    5.1] WARNING: CPU: 0 PID: 1 at mm/oom_kill.c:123 foo+0x1/0x2";
        assert!(matches!(p.feed(warn), Event::Warning(_)));
        assert_eq!(p.feed("[    5.2] Call Trace:"), Event::Output);
        let lockup = "[   30.0] watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [reaper:90]";
        assert!(matches!(p.feed(lockup), Event::Warning(_)));
        // Userspace output has no timestamp: not a kernel bug.
        assert_eq!(p.feed("BUG: test printed this"), Event::Output);
        assert_eq!(p.feed("Oops, typo [x] in test output"), Event::Output);
    }

    #[test]
    fn kernel_message_finds_the_timestamp_after_junk() {
        assert_eq!(kernel_message("[    0.123456] hello"), Some("hello"));
        assert_eq!(kernel_message("abc[1.2] x"), Some("x"));
        assert_eq!(kernel_message("[ok] [  7.000] y"), Some("y"));
        assert_eq!(kernel_message("[ok] no stamp"), None);
    }

    #[test]
    fn payload_round_trips_through_interleaved_kernel_messages() {
        let payload = tar_gz_base64(&[
            ("./doctor.json", b"{\"a\":1}"),
            ("./record/run.json", &[b'x'; 4000]),
        ]);
        let mut p = ConsoleParser::new(NONCE);
        assert_eq!(p.feed(&marker("OUT-BEGIN")), Event::PayloadBegin);
        for (i, line) in payload.lines().enumerate() {
            if i == 2 {
                // A whole kernel line between payload lines is harmless.
                assert!(matches!(
                    p.feed("[   9.9] Kernel panic - not syncing: late"),
                    Event::Fatal(_)
                ));
            }
            assert_eq!(p.feed(&format!("{line}\r")), Event::Payload);
        }
        assert_eq!(p.feed(&marker("OUT-END")), Event::PayloadEnd);
        assert_eq!(p.feed("ordinary"), Event::Output);
        let tar = p.payload_tar().unwrap();
        let dir = std::env::temp_dir().join(format!("reaper-lab-console-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(unpack_tar(&tar, &dir).unwrap(), 2);
        assert_eq!(
            std::fs::read(dir.join("doctor.json")).unwrap(),
            b"{\"a\":1}"
        );
        assert_eq!(
            std::fs::read(dir.join("record/run.json")).unwrap().len(),
            4000
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn payload_corrupted_by_a_mixed_line_is_an_error() {
        let payload = tar_gz_base64(&[("./x", b"data")]);
        let mut p = ConsoleParser::new(NONCE);
        p.feed(&marker("OUT-BEGIN"));
        p.feed(&format!("{}random: junk", payload.lines().next().unwrap()));
        p.feed(&marker("OUT-END"));
        let err = p.payload_tar().unwrap_err().to_string();
        assert!(err.contains("interleaved"), "{err}");
    }
}
