//! Issue 25's VM check on `record/run.json` (recorded with `--exact-locks`):
//! the walkers' steps and the PTE-lock waits were logged; each walker's
//! line through the address space is monotonic in the direction the
//! per-VMA order detector reports (the victim's exit always upward; the
//! mrelease caller's as its `vma_order` says, forward up and reverse
//! down), two probes agreeing on one walk; and every wait is attributed:
//! to a holder, or counted as unknown, never to its own waiter's thread
//! (another thread of its context, such as a multi-threaded victim's
//! sibling, is named as such; on PREEMPT_RT the holder is the lock owner
//! the kernel keeps).

use std::collections::BTreeMap;

use reaper_model::output::report::Holder;
use reaper_model::{
    Collisions, Context, Episode, PteHolderSetup, PteWaitSeen, VmaOrderKind, walk_direction,
};

use super::timing::{expect, no_row, reaped, run_json};
use super::{CellContext, Verdict};

/// The check.
pub fn walkers_and_waits(ctx: &CellContext) -> Verdict {
    let run = match run_json(ctx) {
        Ok(run) => run,
        Err(v) => return v,
    };
    let Some(want) = expect(ctx) else {
        return no_row(ctx);
    };
    let Some(setup) = &run.recording.pte_holders else {
        return Verdict::Fail("run.json has no recording.pte_holders".into());
    };
    if let Some(why) = &setup.waits_off {
        let line = format!("not logged: {why}");
        return if want.must_attach {
            Verdict::Fail(format!("{line}, though every function must attach here"))
        } else {
            Verdict::Pass(line)
        };
    }
    let (reaped, _) = reaped(&run);
    let reaped: Vec<usize> = reaped.into_iter().map(|(n, _)| n).collect();
    let mut lines = Vec::new();
    for (i, episode) in run.episodes.iter().enumerate() {
        let n = i + 1;
        let logged = episode
            .function_timing
            .as_ref()
            .and_then(|t| t.collisions.as_ref());
        let Some(collisions) = logged else {
            return Verdict::Fail(format!("episode {n}: no walker steps or waits logged"));
        };
        // On PREEMPT_RT the waits are the lock tracepoints' sleeping
        // rt_spin_lock waits with the lock's owner (`rt_owner`); a run
        // recorded without them has no PTE-lock waits to tally, as the
        // report says.
        let waits = (run.host.preempt_rt.is_none() || setup.rt_owner).then_some(setup);
        match episode_lines(episode, waits, collisions, reaped.contains(&n)) {
            Ok(line) => lines.push(format!("episode {n}: {line}")),
            Err(Verdict::Fail(why)) => return Verdict::Fail(format!("episode {n}: {why}")),
            Err(other) => return other,
        }
    }
    Verdict::Pass(lines.join("; "))
}

/// One episode's walkers and waits, or what is wrong with them.
fn episode_lines(
    episode: &Episode,
    setup: Option<&PteHolderSetup>,
    collisions: &Collisions,
    reaped: bool,
) -> Result<String, Verdict> {
    let mut parts = Vec::new();
    let victim = walker(episode, collisions, Context::VictimExit)
        .ok_or_else(|| fail("the victim's exit logged no step"))?;
    parts.push(check_direction(
        Context::VictimExit,
        victim,
        Some(VmaOrderKind::Forward),
    )?);
    if reaped {
        let order = episode
            .function_timing
            .as_ref()
            .and_then(|t| t.vma_order(Context::MreleaseCaller))
            .map(|o| o.order);
        let caller = walker(episode, collisions, Context::MreleaseCaller)
            .ok_or_else(|| fail("process_mrelease returned 0 but its caller logged no step"))?;
        parts.push(check_direction(Context::MreleaseCaller, caller, order)?);
    }
    parts.push(match setup {
        Some(setup) => attributed(setup, collisions)?,
        None => "PTE-lock waits not measured on PREEMPT_RT without the lock owners (as the \
                 report says)"
            .to_owned(),
    });
    Ok(parts.join(", "))
}

/// A context's steps inside its teardown, as range starts in call order.
fn walker(episode: &Episode, collisions: &Collisions, context: Context) -> Option<Vec<u64>> {
    let w = collisions.walkers.iter().find(|w| w.context == context)?;
    let (steps, _) = episode.teardown_steps(w);
    Some(steps.iter().map(|s| s.range_start).collect())
}

/// `starts` monotonic the way `order` says (forward: up, reverse: down).
fn check_direction(
    context: Context,
    starts: Vec<u64>,
    order: Option<VmaOrderKind>,
) -> Result<String, Verdict> {
    let name = context.name();
    let want = match order {
        Some(VmaOrderKind::Forward) => true,
        Some(VmaOrderKind::Reverse) => false,
        other => {
            return Ok(format!(
                "{name} {} steps (order {}, direction not checked)",
                starts.len(),
                other.map_or("not detected".to_owned(), |o| o.to_string())
            ));
        }
    };
    let way = |up: bool| if up { "up" } else { "down" };
    match walk_direction(starts.iter().copied()) {
        Some(up) if up == want => Ok(format!("{name} {} steps {}", starts.len(), way(up))),
        Some(up) => Err(fail(format!(
            "{name} walked {} but its VMA order is {}",
            way(up),
            order.map_or(String::new(), |o| o.to_string())
        ))),
        None if starts.len() < 2 => Ok(format!("{name} {} step(s)", starts.len())),
        None => Err(fail(format!(
            "{name}'s {} steps are not monotonic (order {})",
            starts.len(),
            order.map_or(String::new(), |o| o.to_string())
        ))),
    }
}

/// Every kept wait's holder, tallied; a wait held by its own waiter's
/// context (rather than by another of its threads), or by "another
/// thread" that is the waiter itself, would be a misattribution.
fn attributed(setup: &PteHolderSetup, collisions: &Collisions) -> Result<String, Verdict> {
    attributed_by(setup, collisions, |wait| collisions.holder_of(setup, wait))
}

/// [`attributed`] with the holders `holder_of` names (a test gives a
/// wrong one to see the check fail).
fn attributed_by(
    setup: &PteHolderSetup,
    collisions: &Collisions,
    holder_of: impl Fn(&PteWaitSeen) -> Holder,
) -> Result<String, Verdict> {
    let mut tally: BTreeMap<String, u64> = BTreeMap::new();
    for wait in &collisions.waits {
        let holder = holder_of(wait);
        let own_thread = wait.taker.as_ref().is_none_or(|t| t.tid == wait.tid);
        let wrong = match &holder {
            Holder::Context(context) => *context == wait.context,
            Holder::OtherThread(context) => *context != wait.context || own_thread,
            _ => false,
        };
        if wrong {
            return Err(fail(format!(
                "a wait of {} (thread {}) at {} ns is attributed to {}",
                wait.context.name(),
                wait.tid,
                wait.start_ns,
                holder.name()
            )));
        }
        // A third party's comm is run-file text: the CI log gets "other".
        let name = match holder {
            Holder::Other(_) => "other".to_owned(),
            holder => holder.name(),
        };
        *tally.entry(name).or_default() += 1;
    }
    let held: Vec<String> = tally.iter().map(|(h, n)| format!("{n} by {h}")).collect();
    Ok(format!(
        "{} PTE-lock wait(s){}{}{}",
        collisions.waits.len(),
        if setup.rt_owner {
            " (PREEMPT_RT, holders = lock owners)"
        } else {
            ""
        },
        if held.is_empty() {
            String::new()
        } else {
            format!(" ({})", held.join(", "))
        },
        if collisions.waits_lost > 0 {
            format!(", {} lost (counted)", collisions.waits_lost)
        } else {
            String::new()
        }
    ))
}

/// A failing verdict.
fn fail(why: impl Into<String>) -> Verdict {
    Verdict::Fail(why.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// reaper-cli's real sid 7.2 run (`--exact-locks`-era logs): the victim
    /// walked up, the mrelease caller down, one wait held by the caller.
    fn run_72() -> reaper_model::Run {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../reaper-cli/tests/data/report/7.2-collisions.run.json");
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn directions_follow_the_order_and_a_wrong_order_fails() {
        let run = run_72();
        let episode = &run.episodes[0];
        let collisions = episode
            .function_timing
            .as_ref()
            .unwrap()
            .collisions
            .as_ref()
            .unwrap();
        let caller = walker(episode, collisions, Context::MreleaseCaller).unwrap();
        let reverse = check_direction(
            Context::MreleaseCaller,
            caller.clone(),
            Some(VmaOrderKind::Reverse),
        );
        assert_eq!(reverse.unwrap(), "mrelease_caller 91 steps down");
        let forward = check_direction(Context::MreleaseCaller, caller, Some(VmaOrderKind::Forward));
        assert!(matches!(forward, Err(Verdict::Fail(why)) if why.contains("walked down")));
        let victim = walker(episode, collisions, Context::VictimExit).unwrap();
        assert!(check_direction(Context::VictimExit, victim, Some(VmaOrderKind::Forward)).is_ok());
        let setup = run.recording.pte_holders.clone().unwrap();
        assert_eq!(
            attributed(&setup, collisions).unwrap(),
            "1 PTE-lock wait(s) (1 by mrelease_caller)"
        );
    }

    #[test]
    fn a_sibling_thread_is_named_and_a_wait_held_by_its_own_context_fails() {
        let run = run_72();
        let mut collisions = run.episodes[0]
            .function_timing
            .clone()
            .unwrap()
            .collisions
            .unwrap();
        let setup = run.recording.pte_holders.clone().unwrap();
        let waiter = collisions.waits[0].context;
        let taker = collisions.waits[0].taker.as_mut().unwrap();
        taker.context = Some(waiter);
        taker.tid += 1;
        assert_eq!(
            attributed(&setup, &collisions).unwrap(),
            "1 PTE-lock wait(s) (1 by victim_exit (another thread))"
        );
        // The waiter's own thread: unknown, not its context.
        let tid = collisions.waits[0].tid;
        collisions.waits[0].taker.as_mut().unwrap().tid = tid;
        assert_eq!(
            attributed(&setup, &collisions).unwrap(),
            "1 PTE-lock wait(s) (1 by unknown)"
        );
        // A holder_of that named the waiter's context, or its own thread as
        // another, fails the check.
        let own = attributed_by(&setup, &collisions, |w| Holder::Context(w.context));
        assert!(
            matches!(own, Err(Verdict::Fail(why)) if why.contains("attributed to victim_exit"))
        );
        let itself = attributed_by(&setup, &collisions, |w| Holder::OtherThread(w.context));
        assert!(itself.is_err());
    }
}
