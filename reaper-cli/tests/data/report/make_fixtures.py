#!/usr/bin/env python3
"""Writes the hand-made run.json fixtures of the report golden tests.

The stacks are written from real teardown call chains (6.1, 6.18 x86_64 and
7.2 arm64 names, see ../../../src/catalog.rs) with sample shares close to
the mailing-list thread's measurements. Re-run after changing this script,
then bless the goldens: REAPER_BLESS=1 cargo test -p reaper-cli report::tests
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
PERIOD = 250_000  # ns at 4000 Hz

CATALOG = [
    ("reaper_work", ["__oom_reap_task_mm"]),
    ("reaper_kthread", ["oom_reaper"]),
    ("victim_teardown", ["exit_mmap"]),
    ("victim_unmap", ["unmap_vmas"]),
    ("per_vma_unmap", ["zap_vma_for_reaping", "unmap_page_range"]),
    ("pte_lock", ["__pte_offset_map_lock", "pte_offset_map_lock"]),
    ("rmap_removal", ["folio_remove_rmap_ptes", "page_remove_rmap"]),
    ("tlb_flush", ["tlb_flush_mmu"]),
    ("tlb_finish", ["tlb_finish_mmu"]),
    ("page_freeing", ["free_pages_and_swap_cache"]),
    ("spin_slowpath", ["native_queued_spin_lock_slowpath", "queued_spin_lock_slowpath"]),
    ("mrelease_syscall", ["__x64_sys_process_mrelease", "__arm64_sys_process_mrelease",
                          "__do_sys_process_mrelease"]),
]


def symbols(kernel_names):
    out = []
    for concept, candidates in CATALOG:
        entry = {"concept": concept, "candidates": candidates}
        chosen = next((c for c in candidates if c in kernel_names), None)
        if chosen:
            entry["symbol"] = chosen
        out.append(entry)
    return out


class K:
    """Names of one kernel flavour."""

    def __init__(self, release, arch):
        self.release, self.arch = release, arch
        x86 = arch == "x86_64"
        self.victim_entry = (
            "entry_SYSCALL_64_after_hwframe;do_syscall_64;syscall_exit_to_user_mode;"
            "arch_do_signal_or_restart;get_signal;do_group_exit;do_exit;exit_mm;mmput;__mmput"
            if x86 else
            "el0t_64_sync;el0t_64_sync_handler;el0_svc;do_el0_svc;invoke_syscall;"
            "do_notify_resume;get_signal;do_group_exit;do_exit;exit_mm;mmput;__mmput")
        self.mrelease_entry = (
            "entry_SYSCALL_64_after_hwframe;do_syscall_64;x64_sys_call;"
            "__x64_sys_process_mrelease;__do_sys_process_mrelease"
            if x86 else
            "el0t_64_sync;el0t_64_sync_handler;el0_svc;do_el0_svc;invoke_syscall;"
            "__arm64_sys_process_mrelease")
        self.kthread_entry = "ret_from_fork_asm;ret_from_fork;kthread;oom_reaper;oom_reap_task_mm"
        old = release.startswith("6.1.")
        self.rmap = "page_remove_rmap" if old else "folio_remove_rmap_ptes"
        self.pte_lock = None if old else (
            "pte_offset_map_lock" if release.startswith("7.") else "__pte_offset_map_lock")
        self.slowpath = "native_queued_spin_lock_slowpath" if x86 else "queued_spin_lock_slowpath"
        self.reaper_vma = "zap_vma_for_reaping" if release.startswith("7.") else "unmap_page_range"
        names = {"__oom_reap_task_mm", "oom_reaper", "exit_mmap", "unmap_vmas", "unmap_page_range",
                 self.rmap, "tlb_flush_mmu", "tlb_finish_mmu", "free_pages_and_swap_cache",
                 self.slowpath, "zap_pte_range", self.reaper_vma}
        if self.pte_lock:
            names.add(self.pte_lock)
        names.add("__x64_sys_process_mrelease" if x86 else "__arm64_sys_process_mrelease")
        self.symbols = symbols(names)

    def zap(self):
        """(suffix under zap_pte_range, weight) of the PTE loop."""
        lock = (f"{self.pte_lock};_raw_spin_lock;{self.slowpath}" if self.pte_lock
                else f"_raw_spin_lock;{self.slowpath}")
        return [
            ("", 9),
            (lock, 15),
            ((f"{self.pte_lock};_raw_spin_lock" if self.pte_lock else "_raw_spin_lock"), 2),
            (self.rmap, 24),
            (f"{self.rmap};__lruvec_stat_mod_folio", 7),
            ("tlb_flush_mmu;free_pages_and_swap_cache", 6),
            ("tlb_flush_mmu;free_pages_and_swap_cache;folios_put_refs", 14),
            ("tlb_flush_mmu;free_pages_and_swap_cache;folios_put_refs;free_unref_folios", 10),
            ("__tlb_remove_folio_pages_size", 2),
            ("folio_mark_accessed", 1),
        ]


def stacks_victim(k, scale):
    base = f"{k.victim_entry};exit_mmap"
    out = {}
    for suffix, w in k.zap():
        f = f"{base};unmap_vmas;unmap_page_range;zap_pmd_range;zap_pte_range"
        out[f + (";" + suffix if suffix else "")] = w
    out.update({
        base: 2,
        f"{base};unmap_vmas": 1,
        f"{base};free_pgtables;unlink_anon_vmas;anon_vma_interval_tree_remove": 4,
        f"{base};free_pgtables;free_pgd_range": 1,
        f"{base};tlb_finish_mmu;free_pages_and_swap_cache;folios_put_refs": 3,
        f"{base};__vm_area_free;kmem_cache_free": 2,
        f"{k.victim_entry.rsplit(';', 4)[0]};task_work_run;____fput;__fput": 1,
        "[user]": 1,
    })
    return {s: max(1, round(w * scale)) for s, w in out.items()}


def stacks_reaper(k, entry, scale):
    base = f"{entry};__oom_reap_task_mm"
    out = {}
    for suffix, w in k.zap():
        f = (f"{base};{k.reaper_vma};zap_pmd_range;zap_pte_range" if k.reaper_vma == "unmap_page_range"
             else f"{base};{k.reaper_vma};unmap_page_range;zap_pmd_range;zap_pte_range")
        out[f + (";" + suffix if suffix else "")] = w
    out.update({
        base: 1,
        f"{base};tlb_finish_mmu": 3,
        f"{base};tlb_finish_mmu;free_pages_and_swap_cache;folios_put_refs": 8,
        f"{base};mas_find": 1,
    })
    return {s: max(1, round(w * scale)) for s, w in out.items()}


def stack_list(d):
    return [{"frames": s.split(";"), "samples": n, "period_ns": n * PERIOD} for s, n in sorted(d.items())]


def lock_waits(k, base, scale, reaper):
    under = (f"{base};{k.reaper_vma};zap_pmd_range;zap_pte_range" if reaper or k.reaper_vma == "unmap_page_range"
             else f"{base};unmap_vmas;unmap_page_range;zap_pmd_range;zap_pte_range")
    if not reaper:
        under = f"{base};unmap_vmas;unmap_page_range;zap_pmd_range;zap_pte_range"
    spin = f"{under};{k.pte_lock};_raw_spin_lock" if k.pte_lock else f"{under};_raw_spin_lock"
    count = round(300 * scale)
    total = round(3_100_000 * scale * (2.1 if reaper else 1.0))
    out = [{"frames": spin.split(";"), "flags": 1, "count": count, "total_ns": total,
            "max_ns": 41_000 + round(9_000 * scale)}]
    if not reaper:
        out.append({"frames": f"{k.victim_entry.rsplit(';', 3)[0]};exit_mm;mmap_read_lock;down_read;rwsem_down_read_slowpath".split(";"),
                    "flags": 2, "count": 1, "total_ns": round(180_000 * scale), "max_ns": round(180_000 * scale)})
    else:
        out.append({"frames": f"{base};tlb_finish_mmu;free_pages_and_swap_cache;folios_put_refs;_raw_spin_lock_irqsave".split(";"),
                    "flags": 1, "count": round(12 * scale), "total_ns": round(95_000 * scale), "max_ns": 21_000})
    return out


def counters(total_samples, lock_begins, events, **losses):
    c = {"samples_tracked": total_samples, "sample_stack_lost": 0, "sample_counts_full": 0,
         "lock_begin_tracked": lock_begins, "lock_pending_full": 0, "lock_waits_full": 0,
         "lock_stack_lost": 0, "timeline_ring_full": 0, "timeline_events": events}
    c.update(losses)
    return c


def timeline(victim_pid, reaper_tid, exit_ms, mrelease_ms, mrelease=True, reaper_ctx="mrelease_caller"):
    ev = [{"t_ns": 0, "kind": "kill", "tid": reaper_tid, "tgid": reaper_tid - 1, "comm": "reaper", "arg": victim_pid}]
    if mrelease:
        ev.append({"t_ns": 41_000, "kind": "mrelease_enter", "context": reaper_ctx, "tid": reaper_tid,
                   "tgid": reaper_tid - 1, "comm": "reaper-mrelease", "arg": 5})
        ev.append({"t_ns": round(mrelease_ms * 1e6), "kind": "mrelease_exit", "context": reaper_ctx,
                   "tid": reaper_tid, "tgid": reaper_tid - 1, "comm": "reaper-mrelease", "arg": 0})
    ev.append({"t_ns": round(exit_ms * 1e6), "kind": "exit_mmap_done", "context": "victim_exit", "tid": victim_pid,
               "tgid": victim_pid, "comm": "reaper-victim", "arg": 0})
    ev.append({"t_ns": round(exit_ms * 1e6) + 23_000, "kind": "process_exit", "context": "victim_exit",
               "tid": victim_pid, "tgid": victim_pid, "comm": "reaper-victim", "arg": 0})
    ev.append({"t_ns": round(exit_ms * 1e6) + 1_250_000, "kind": "process_free", "tid": 0, "tgid": 0,
               "comm": "swapper/3", "arg": victim_pid})
    ev.sort(key=lambda e: e["t_ns"])
    return ev


def episode(k, index, scale, mrelease=True, lock=True, extra_counters=None, user_losses=None,
            lost_stacks=0, exit_ms=None, partial=False, oom=False):
    pid = 4242 + 10 * index
    victim = stacks_victim(k, scale)
    if lost_stacks:
        victim["[stack lost]"] = lost_stacks
    ctxs = [{"context": "victim_exit", "tasks": [{"tid": pid, "comm": "reaper-victim"}],
             "stacks": stack_list(victim),
             "lock_waits": lock_waits(k, f"{k.victim_entry};exit_mmap", scale, False) if lock else []}]
    samples = sum(victim.values())
    if oom:
        reaper = stacks_reaper(k, k.kthread_entry, scale * 0.7)
        reaper["ret_from_fork_asm;ret_from_fork;kthread;oom_reaper;schedule_timeout_idle"] = 1
        ctxs.append({"context": "oom_reaper", "tasks": [{"tid": 58, "comm": "oom_reaper"}],
                     "stacks": stack_list(reaper),
                     "lock_waits": lock_waits(k, f"{k.kthread_entry};__oom_reap_task_mm", scale * 0.7, True)})
        samples += sum(reaper.values())
    if mrelease:
        reaper = stacks_reaper(k, k.mrelease_entry, scale * 0.8)
        reaper["[user]"] = 1
        ctxs.append({"context": "mrelease_caller", "tasks": [{"tid": 4100, "comm": "reaper-mrelease"}],
                     "stacks": stack_list(reaper),
                     "lock_waits": lock_waits(k, f"{k.mrelease_entry};__oom_reap_task_mm", scale, True) if lock else []})
        samples += sum(reaper.values())
    exit_ms = exit_ms or round(31.5 * scale, 3)
    mrelease_ms = round(24.2 * scale, 3)
    tl = timeline(pid, 4100, exit_ms, mrelease_ms, mrelease)
    if oom:
        tl += [{"t_ns": 2_000_000 + d, "kind": kind, "context": "oom_reaper" if "reaping" in kind else None,
                "tid": 58 if "reaping" in kind else 4100, "tgid": 58 if "reaping" in kind else 4099,
                "comm": "oom_reaper" if "reaping" in kind else "reaper", "arg": pid}
               for d, kind in [(0, "oom_mark_victim"), (5_000, "oom_wake_reaper"),
                               (2_000_000, "oom_start_reaping"), (round(20.5 * scale * 1e6), "oom_finish_reaping")]]
        for e in tl:
            if e.get("context") is None:
                e.pop("context", None)
        tl.sort(key=lambda e: e["t_ns"])
    lat = {"kill_to_exit_mmap_done_ns": round(exit_ms * 1e6)}
    if mrelease:
        lat.update({"kill_to_mrelease_done_ns": round(mrelease_ms * 1e6),
                    "mrelease_duration_ns": round(mrelease_ms * 1e6) - 41_000, "mrelease_ret": 0})
    c = counters(samples + lost_stacks, sum(w["count"] for x in ctxs for w in x["lock_waits"]), len(tl) - 1,
                 **(extra_counters or {}))
    return {"index": index, "victim": {"pid": pid, "comm": "reaper-victim", "rss_bytes": 1_074_003_968,
                                       "threads": 1, "vmas": 64},
            "contexts": ctxs, "timeline": tl, "latencies": lat, "counters": c,
            "user_losses": user_losses or {}, "partial": partial}


def run(k, episodes, *, cpus=8, mrelease=True, lock_probe="attached", not_measured=(), partial=None,
        kind="victim", desc=None, size=(1 << 30), threads=1, runs=None):
    probes = [{"probe": "sampling", "mode": "perf_event", "status": "attached"},
              {"probe": "lock_wait", "mode": "tracepoint", "status": lock_probe}]
    probes += [{"probe": f"timeline:{tp}", "mode": "tracepoint", "status": "attached"}
               for tp in ["syscalls:sys_enter_process_mrelease", "syscalls:sys_exit_process_mrelease",
                          "mmap:exit_mmap", "sched:sched_process_exit", "sched:sched_process_free",
                          "oom:mark_victim", "oom:wake_reaper", "oom:start_task_reaping",
                          "oom:finish_task_reaping", "oom:skip_task_reaping"]]
    r = {"schema_version": 1, "tool": {"name": "reaper", "version": "0.1.0"},
         "host": {"kernel_release": k.release, "arch": k.arch, "cpus": cpus},
         "recording": {"started_unix": 1_764_108_245, "freq_hz": 4000, "sample_period_ns": PERIOD,
                       "probes": probes,
                       "scenario": {"kind": kind, "description": desc, "victim_bytes": size, "vmas": 64,
                                    "threads": threads, "mrelease": mrelease, "runs": runs or len(episodes)}},
         "symbols": k.symbols, "episodes": episodes,
         "not_measured": [{"what": w, "why": y} for w, y in not_measured],
         "partial": partial is not None}
    if partial:
        r["partial_reason"] = partial
    return r


def write(name, obj):
    with open(os.path.join(HERE, name), "w") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


def main():
    k618 = K("6.18.0-1-amd64", "x86_64")
    desc = "victim 1G,vmas=64,threads=1 + process_mrelease"
    write("6.18-mrelease.run.json", run(k618, [episode(k618, 0, 4.0)], desc=desc))
    write("6.18-3-episodes.run.json",
          run(k618, [episode(k618, i, s) for i, s in enumerate([4.0, 4.6, 3.7])], desc=desc + ", runs=3"))
    write("6.18-losses.run.json", run(k618, [episode(
        k618, 0, 2.0, lost_stacks=12,
        extra_counters={"sample_stack_lost": 12, "timeline_ring_full": 3, "lock_waits_full": 0},
        user_losses={"timeline_malformed": 1})], desc=desc))
    write("6.18-partial.run.json", run(k618, [episode(k618, 0, 3.0), episode(k618, 1, 1.2, partial=True)],
                                        desc=desc + ", runs=5", runs=5,
                                        partial="interrupted by Ctrl-C during episode 2 of 5; probes detached, "
                                                "data collected up to then kept"))
    write("6.18-oom.run.json", run(k618, [episode(k618, 0, 3.0, mrelease=False, oom=True)], mrelease=False,
                                    kind="oom", desc="victim 1G,vmas=64,threads=1, OOM kill + oom_reaper"))
    k61 = K("6.1.0-27-amd64", "x86_64")
    write("6.1-no-lock-probe.run.json", run(
        k61, [episode(k61, 0, 3.0, mrelease=False, lock=False)], mrelease=False, cpus=4,
        lock_probe="tracepoint lock:contention_begin: No such file or directory (os error 2)",
        not_measured=[("lock wait time (pte spinlock waits)",
                       "lock:contention_begin/end did not attach: tracepoint lock:contention_begin: "
                       "No such file or directory (os error 2)")],
        desc="victim 1G,vmas=64,threads=1, kill only (no process_mrelease)"))
    k72 = K("7.2.0-rc3-arm64", "aarch64")
    write("7.2-arm64-6-episodes.run.json", run(
        k72, [episode(k72, i, s) for i, s in enumerate([2.0, 2.3, 1.8, 2.6, 2.1, 1.9])], cpus=4,
        desc="victim 512M,vmas=64,threads=4 + process_mrelease, runs=6", size=1 << 29, threads=4))

    bad_files()


def bad_files():
    """Run files the loader must reject, each with its own error."""
    good = open(os.path.join(HERE, "6.18-mrelease.run.json")).read()
    with open(os.path.join(HERE, "bad-truncated.json"), "w") as f:
        f.write(good[: len(good) // 2])
    wrong = json.loads(good)
    wrong["schema_version"] = 7
    write("bad-wrong-schema.json", wrong)
    write("bad-not-a-run.json", {"schema_version": 1, "title": "some other tool", "samples": [1, 2, 3]})
    write("bad-no-schema.json", [{"frames": ["a", "b"], "samples": 3}])
    with open(os.path.join(HERE, "bad-corrupt.json"), "w") as f:
        f.write('{\n  "schema_version": 1,\n  "tool": {"name": "reaper", "version": "0.1.0"},\n'
                '  "host": {"kernel_release": "6.18.0" "arch": "x86_64"}\n}\n')


main()
