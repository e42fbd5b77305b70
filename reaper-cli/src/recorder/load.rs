//! Loading the eBPF object for a recording and attaching its probe groups
//! (function timing's ladder comes later, once the catalog is resolved),
//! the BTF the fentry loads may need, and the eBPF side's log.

use anyhow::{Context as _, bail};
use aya::Ebpf;
use reaper_common::{
    collision::RtOwnerConfig, function_timing::FunctionTimingConfig,
    tracepoint_offsets::TracepointOffsets,
};

use super::{RecordSettings, Target, period_ns};
use crate::{
    model::ProbeGroup,
    probes::{attach, function_timing, kernel_btf::FentryBtf, loader, raw_tp::RawPlan},
    system::{kernel, tracefs},
};

/// In watch mode nothing that loads or attaches depends on kallsyms
/// (function-timing programs never load there, so the object takes their
/// global switched off): the object loads and the probes attach while the
/// other thread still reads kallsyms. `None` in every other mode.
pub(super) fn load_before_kallsyms(
    settings: &RecordSettings,
    offsets: &TracepointOffsets,
    raw: &RawPlan,
) -> anyhow::Result<Option<(Ebpf, attach::AttachReport)>> {
    if !matches!(settings.target, Target::Watch(_)) {
        return Ok(None);
    }
    let off = FunctionTimingConfig::DISABLED;
    let rt_off = RtOwnerConfig::DISABLED;
    Ok(Some(load_and_attach(
        settings,
        offsets,
        (&off, &rt_off),
        raw,
    )?))
}

/// Function timing's global for `plan`, and why the VMA order is off (if
/// it is). Before 5.19 there are no lock:contention_* tracepoints: the spin
/// slow path's probe records the lock waits instead. The collision logs'
/// part is off under `record --no-collision-log`.
pub(super) fn timing_config(
    tracefs_root: &std::path::Path,
    plan: &function_timing::Plan,
    btf: Option<&crate::catalog::BtfFacts>,
    settings: &RecordSettings,
) -> (FunctionTimingConfig, Option<String>) {
    let slowpath_lock_waits = !tracefs::has_event(tracefs_root, "lock", "contention_begin");
    let (config, why) =
        function_timing::config_for(plan, btf, slowpath_lock_waits, settings.holders);
    let collision = settings.collision_log.apply(config.collision);
    (
        FunctionTimingConfig {
            collision,
            ..config
        },
        why,
    )
}

/// PREEMPT_RT's lock owners for this recording; none after the early
/// (watch-mode) load, which took no function timing and so no logs.
pub(super) fn rt_owners(
    loaded_early: bool,
    timing: &reaper_common::function_timing::FunctionTimingConfig,
    btf: &super::kernel_facts::BtfSummary,
    symbols: &[crate::model::ResolvedConcept],
    symbolizer: &crate::symbolize::KernelSymbolizer,
) -> function_timing::rt_owner::RtOwners {
    if loaded_early {
        return function_timing::rt_owner::RtOwners::LogsOff;
    }
    function_timing::rt_owner::config(&timing.collision, btf.facts.as_ref(), symbols, |name| {
        symbolizer.range_of(name)
    })
}

/// Loads the object with `globals` as function timing's and PREEMPT_RT's
/// lock-owner globals and attaches every probe group but function timing;
/// fails when neither sampling nor the lock-wait tracepoints attached
/// (nothing to measure).
pub(super) fn load_and_attach(
    settings: &RecordSettings,
    offsets: &TracepointOffsets,
    globals: (&FunctionTimingConfig, &RtOwnerConfig),
    raw: &RawPlan,
) -> anyhow::Result<(Ebpf, attach::AttachReport)> {
    let mut ebpf = loader::load_with_loader(
        loader::new_loader(),
        offsets,
        &settings.sizes,
        globals,
        settings.ebpf_log,
    )
    .map_err(|err| {
        match crate::system::policy::refusal_hint(&crate::system::kernel::host_info_release()) {
            Some(hint) => anyhow::Error::from(err).context(hint),
            None => err.into(),
        }
    })?;
    if settings.ebpf_log == loader::EbpfLog::Drops {
        start_ebpf_logger(&mut ebpf);
    }
    let cpus = kernel::online_cpus().context("reading the online CPUs")?;
    let attach = attach::attach_all(&mut ebpf, &cpus, period_ns(settings), raw);
    let attached = |group: ProbeGroup| attach.attached(group.name());
    if !attached(ProbeGroup::Sampling) && !attached(ProbeGroup::LockWait) {
        let reasons: Vec<String> = attach
            .not_measured
            .iter()
            .map(|n| format!("  {}: {}", n.subject, n.why))
            .collect();
        bail!(
            "neither cpu-clock sampling nor the lock contention tracepoints attached on this kernel, so there is nothing to measure:\n{}{}",
            reasons.join("\n"),
            crate::system::policy::refusal_hint(&crate::system::kernel::host_info_release())
                .map_or_else(String::new, |hint| format!("\n{hint}"))
        );
    }
    Ok((ebpf, attach))
}

/// aya's kernel BTF for the fentry loads `record` may try: none in watch
/// mode or without fentry in `--attach`; otherwise parsed on first use,
/// after asking the kernel whether it refuses fentry for every function
/// (against the first function the ladder will try).
pub(super) fn fentry_btf(
    settings: &RecordSettings,
    plan: &function_timing::Plan,
    has_btf: bool,
    function_id: impl Fn(&str) -> Option<u32>,
) -> FentryBtf {
    let tries_fentry = matches!(
        settings.attach,
        function_timing::AttachPolicy::Auto | function_timing::AttachPolicy::Fentry
    );
    if matches!(settings.target, Target::Watch(_)) || !tries_fentry {
        return FentryBtf::default();
    }
    let target = plan
        .functions
        .iter()
        .find(|f| f.in_btf != Some(false))
        .and_then(|f| function_id(&f.symbol));
    FentryBtf::probe(has_btf, target)
}

/// Forwards the eBPF side's aya-log records to the `log` crate from a tokio
/// task woken by their ring buffer (AsyncFd), for the whole recording.
fn start_ebpf_logger(ebpf: &mut Ebpf) {
    let logger = match aya_log::EbpfLogger::init(ebpf) {
        Ok(logger) => logger,
        Err(err) => {
            log::warn!("eBPF logging unavailable: {err}");
            return;
        }
    };
    // SAFETY: the logger owns its ring buffer's fd, open and unchanged for
    // as long as the AsyncFd owns the logger.
    let logger = unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(logger, tokio::io::Interest::READABLE)
    };
    let mut logger = match logger {
        Ok(logger) => logger,
        Err(err) => {
            log::warn!("eBPF logging unavailable: {err}");
            return;
        }
    };
    tokio::spawn(async move {
        while let Ok(mut guard) = logger.readable_mut().await {
            guard.get_inner_mut().flush();
            guard.clear_ready();
        }
    });
}
