//! The waiter × holder table of PTE-lock waits (issue 25), built from each
//! episode's logged waits and walker steps.
//!
//! Holders are named by [`crate::model::Collisions::holder_of`]: the lock's
//! last taker where the kernel lets reaper record it, else the other
//! walker inside its step.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{Collisions, PteHolderSetup, PteWaitSeen, Run};

use super::model::{CollisionReport, EpisodeCollisions, Holder, HolderRow, HolderSource};
use super::pte_lock::PteLockKind;

/// Why PREEMPT_RT runs recorded without the owners have no table.
pub const RT_NOT_LOGGED: &str = "PREEMPT_RT: the PTE lock sleeps in rt_spin_lock, which this \
     recording's wait log did not watch (it logged the spin slow path's calls; reaper reads \
     rt_spin_lock's owners on kernels whose BTF describes the rt_mutex)";

/// Why a run that set the logs up has no table: the recording's reason,
/// or PREEMPT_RT recorded without the lock owners, where the PTE lock
/// sleeps in rt_spin_lock, which the spin-slow-path log does not watch (an
/// empty table would lie). The map ([`super::collision_map`]) is drawn
/// only when this is `None`.
pub fn why_not_measured(run: &Run, setup: &PteHolderSetup) -> Option<String> {
    setup.waits_off.clone().or_else(|| {
        (PteLockKind::of(run) == PteLockKind::Sleeping && !setup.rt_owner)
            .then(|| RT_NOT_LOGGED.to_owned())
    })
}

/// The table, or `None` for runs recorded before reaper logged the waits.
pub fn build(run: &Run) -> Option<CollisionReport> {
    let setup = run.recording.pte_holders.as_ref()?;
    let named_by = if setup.rt_owner {
        HolderSource::RtOwner
    } else if setup.last_taker_off.is_some() {
        HolderSource::WalkerInStep
    } else {
        HolderSource::LastTaker
    };
    let mut report = CollisionReport {
        not_measured: why_not_measured(run, setup),
        named_by,
        last_taker_off: setup.last_taker_off.clone(),
        episodes: Vec::new(),
        summed: Vec::new(),
    };
    if report.not_measured.is_some() {
        return Some(report);
    }
    let mut all = Table::default();
    for (i, episode) in run.episodes.iter().enumerate() {
        let collisions = episode
            .function_timing
            .as_ref()
            .and_then(|t| t.collisions.as_ref());
        let Some(collisions) = collisions else {
            report.episodes.push(EpisodeCollisions {
                episode: i + 1,
                not_measured: Some("no function timing in this episode".to_owned()),
                rows: Vec::new(),
                waits_lost: 0,
                waits_open: 0,
                steps_lost: 0,
            });
            continue;
        };
        let table = episode_table(setup, collisions);
        all.merge(&table);
        report.episodes.push(EpisodeCollisions {
            episode: i + 1,
            not_measured: None,
            rows: table.rows(),
            waits_lost: collisions.waits_lost,
            waits_open: collisions
                .waits
                .iter()
                .filter(|w| w.duration_ns.is_none())
                .count() as u64,
            steps_lost: collisions.walkers.iter().map(|w| w.lost).sum(),
        });
    }
    report.summed = all.rows();
    Some(report)
}

/// Cells keyed by (waiter, holder).
#[derive(Clone, Debug, Default)]
struct Table(BTreeMap<(crate::model::Context, Holder), Cell>);

/// One (waiter, holder) cell.
#[derive(Clone, Debug, Default)]
struct Cell {
    count: u64,
    total_ns: u64,
    max_ns: u64,
    /// Distinct locks of one episode, or their count summed over episodes.
    locks: BTreeSet<u64>,
    distinct_locks: u64,
}

impl Table {
    fn add(&mut self, wait: &PteWaitSeen, holder: Holder, duration: u64) {
        let cell = self.0.entry((wait.context, holder)).or_default();
        cell.count += 1;
        cell.total_ns += duration;
        cell.max_ns = cell.max_ns.max(duration);
        cell.locks.insert(wait.lock);
        cell.distinct_locks = cell.locks.len() as u64;
    }

    /// Adds another episode's cells; distinct locks add up (each episode's
    /// page tables are its own).
    fn merge(&mut self, other: &Self) {
        for (key, c) in &other.0 {
            let cell = self.0.entry(key.clone()).or_default();
            cell.count += c.count;
            cell.total_ns += c.total_ns;
            cell.max_ns = cell.max_ns.max(c.max_ns);
            cell.distinct_locks += c.distinct_locks;
        }
    }

    /// The rows, largest total wait first (ties: waiter, then holder).
    fn rows(&self) -> Vec<HolderRow> {
        let mut rows: Vec<HolderRow> = self
            .0
            .iter()
            .map(|((waiter, holder), c)| HolderRow {
                waiter: *waiter,
                holder: holder.clone(),
                count: c.count,
                total_ns: c.total_ns,
                max_ns: c.max_ns,
                distinct_locks: c.distinct_locks,
            })
            .collect();
        rows.sort_by(|a, b| {
            b.total_ns
                .cmp(&a.total_ns)
                .then(a.waiter.cmp(&b.waiter))
                .then(a.holder.cmp(&b.holder))
        });
        rows
    }
}

/// One episode's cells; waits whose end was not seen are left out (and
/// counted by the caller).
fn episode_table(setup: &PteHolderSetup, collisions: &Collisions) -> Table {
    let mut table = Table::default();
    for wait in &collisions.waits {
        let Some(duration) = wait.duration_ns else {
            continue;
        };
        table.add(wait, collisions.holder_of(setup, wait), duration);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Context, TakerSeen, WalkerStepSeen, WalkerSteps};

    fn taker(context: Option<Context>, tid: u32, comm: &str) -> TakerSeen {
        TakerSeen {
            context,
            tid,
            comm: comm.into(),
            addr: 0x7f00_0000_0000,
            taken_ns: 0,
        }
    }

    fn wait(
        context: Context,
        tid: u32,
        lock: u64,
        start_ns: i64,
        taker: Option<TakerSeen>,
    ) -> PteWaitSeen {
        PteWaitSeen {
            context,
            tid,
            lock,
            start_ns,
            duration_ns: Some(100),
            taker,
        }
    }

    /// The victim walked [0, 1000) ns, the reaper [500, 700) ns.
    fn walks() -> Collisions {
        let step = |start: u64, enter_ns, exit_ns| WalkerStepSeen {
            range_start: start,
            range_end: start + 0x1000,
            tid: 1,
            enter_ns,
            exit_ns,
        };
        let walker = |context, steps| WalkerSteps {
            context,
            function: "unmap_page_range".into(),
            steps,
            lost: 0,
        };
        Collisions {
            walkers: vec![
                walker(Context::VictimExit, vec![step(0x1000, 0, Some(1000))]),
                walker(
                    Context::OomReaper,
                    vec![step(0x9000, 500, Some(700)), step(0xa000, 800, None)],
                ),
            ],
            waits: Vec::new(),
            waits_lost: 0,
        }
    }

    fn armed() -> PteHolderSetup {
        PteHolderSetup::default()
    }

    fn inline() -> PteHolderSetup {
        PteHolderSetup {
            last_taker_off: Some("inline".into()),
            ..PteHolderSetup::default()
        }
    }

    #[test]
    fn the_last_taker_names_the_holder_unless_it_is_the_waiter_itself() {
        let c = walks();
        let victim = Some(Context::VictimExit);
        let w = wait(
            Context::OomReaper,
            9,
            1,
            50,
            Some(taker(victim, 1, "victim")),
        );
        assert_eq!(
            c.holder_of(&armed(), &w),
            Holder::Context(Context::VictimExit)
        );
        let third = wait(
            Context::OomReaper,
            9,
            1,
            50,
            Some(taker(None, 44, "khugepaged")),
        );
        assert_eq!(
            c.holder_of(&armed(), &third),
            Holder::Other("khugepaged".into())
        );
        let own = wait(
            Context::OomReaper,
            9,
            1,
            50,
            Some(taker(Some(Context::OomReaper), 9, "oom_reaper")),
        );
        assert_eq!(
            c.holder_of(&armed(), &own),
            Holder::Unknown,
            "an untracked task took it since"
        );
        // Another thread of the waiter's context (a victim's sibling, on
        // PREEMPT_RT the lock's owner): named as such, not as the context.
        let victim_wait = wait(
            Context::VictimExit,
            9,
            1,
            50,
            Some(taker(victim, 12, "victim")),
        );
        assert_eq!(
            c.holder_of(&armed(), &victim_wait),
            Holder::OtherThread(Context::VictimExit)
        );
        assert_eq!(
            Holder::OtherThread(Context::VictimExit).name(),
            "victim_exit (another thread)"
        );
        // Armed but no taker: no tracked walker took the lock, so the walker
        // inside its step is not the holder.
        let none = wait(Context::OomReaper, 9, 1, 50, None);
        assert_eq!(c.holder_of(&armed(), &none), Holder::Unknown);
    }

    #[test]
    fn without_last_takers_the_other_walker_in_its_step_is_the_holder() {
        let c = walks();
        let at = |context, t| c.holder_of(&inline(), &wait(context, 9, 1, t, None));
        assert_eq!(
            at(Context::OomReaper, 50),
            Holder::Context(Context::VictimExit)
        );
        assert_eq!(
            at(Context::VictimExit, 600),
            Holder::Context(Context::OomReaper)
        );
        assert_eq!(
            at(Context::VictimExit, 750),
            Holder::Unknown,
            "between the reaper's steps"
        );
        assert_eq!(
            at(Context::VictimExit, 900),
            Holder::Unknown,
            "a step whose exit was not seen"
        );
        assert_eq!(
            at(Context::OomReaper, 1000),
            Holder::Unknown,
            "the victim's step ended"
        );
    }

    fn run_with(setup: PteHolderSetup, episodes: Vec<Option<Collisions>>) -> Run {
        let mut run: Run = serde_json::from_str(include_str!(
            "../../tests/data/report/6.18-mrelease.run.json"
        ))
        .unwrap();
        run.recording.pte_holders = Some(setup);
        let template = run.episodes[0].clone();
        run.episodes = episodes
            .into_iter()
            .map(|c| {
                let mut e = template.clone();
                e.function_timing = c.map(|c| crate::model::FunctionTiming {
                    collisions: Some(c),
                    ..Default::default()
                });
                e
            })
            .collect();
        run
    }

    #[test]
    fn rows_add_up_per_episode_and_over_episodes_with_distinct_locks() {
        let mut c = walks();
        let victim = Some(taker(Some(Context::VictimExit), 1, "victim"));
        c.waits = vec![
            wait(Context::OomReaper, 9, 1, 10, victim.clone()),
            wait(Context::OomReaper, 9, 2, 20, victim.clone()),
            PteWaitSeen {
                duration_ns: Some(300),
                ..wait(Context::OomReaper, 9, 2, 30, victim)
            },
            wait(Context::VictimExit, 1, 3, 40, None),
            PteWaitSeen {
                duration_ns: None,
                ..wait(Context::VictimExit, 1, 3, 50, None)
            },
        ];
        let run = run_with(armed(), vec![Some(c.clone()), Some(c), None]);
        let r = build(&run).unwrap();
        assert_eq!(r.named_by, HolderSource::LastTaker);
        let e = &r.episodes[0];
        assert_eq!(e.waits_open, 1);
        assert_eq!(
            e.rows[0],
            HolderRow {
                waiter: Context::OomReaper,
                holder: Holder::Context(Context::VictimExit),
                count: 3,
                total_ns: 500,
                max_ns: 300,
                distinct_locks: 2,
            }
        );
        assert_eq!(
            (e.rows[1].holder.clone(), e.rows[1].count),
            (Holder::Unknown, 1)
        );
        assert!(r.episodes[2].not_measured.is_some());
        assert_eq!(
            (
                r.summed[0].count,
                r.summed[0].total_ns,
                r.summed[0].distinct_locks
            ),
            (6, 1000, 4),
            "two episodes' own page tables"
        );
    }

    #[test]
    fn old_runs_have_no_table_and_a_kernel_that_cannot_says_why() {
        let mut run = run_with(armed(), vec![None]);
        run.recording.pte_holders = None;
        assert_eq!(build(&run), None);
        let off = PteHolderSetup {
            waits_off: Some("no function probe attached to unmap_page_range".into()),
            ..PteHolderSetup::default()
        };
        let r = build(&run_with(off, vec![None])).unwrap();
        assert!(r.not_measured.unwrap().contains("unmap_page_range"));
        assert!(r.episodes.is_empty());
    }
}
