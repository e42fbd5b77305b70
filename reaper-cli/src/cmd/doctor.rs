//! `reaper doctor [--json]`.

use clap::Args;

use crate::console::{note, say, sayln};
use crate::doctor;

/// Arguments of `reaper doctor`.
#[derive(Debug, Args)]
#[command(after_help = super::help::after_help(
    "doctor",
    "Every program record may use is loaded and attached for real; the kernel policy block names \
lockdown, LSMs, seccomp and the BPF sysctls, and what each refused here (README: \"When the kernel refuses\")."
))]
pub struct DoctorArgs {
    /// Print the diagnosis as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Prints the diagnosis; exit code 1 when not even tracepoints or sampling work.
pub fn run(args: &DoctorArgs) -> anyhow::Result<i32> {
    let diagnosis = doctor::diagnose();
    if args.json {
        sayln!("{}", serde_json::to_string_pretty(&diagnosis)?);
    } else {
        say!("{}", doctor::render(&diagnosis));
    }
    if diagnosis.can_record() {
        Ok(0)
    } else {
        note!(
            "reaper: this kernel allows neither tracepoints nor perf_event sampling for reaper, so it cannot record; {}",
            diagnosis
                .privileges
                .as_ref()
                .err()
                .map_or("see the attach kinds above", |why| why.0.as_str())
        );
        Ok(1)
    }
}
