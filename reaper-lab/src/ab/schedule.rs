//! The order of A and B boots: batches in an ABBA pattern (A B B A A B …),
//! so a drift that grows over the session (other load, thermal, page cache)
//! hits both sides equally, to first order.

/// One side of the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Without the patch.
    A,
    /// With the patch.
    B,
}

impl Side {
    pub fn name(self) -> &'static str {
        match self {
            Side::A => "A",
            Side::B => "B",
        }
    }
}

/// One boot: a side and how many episodes it records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batch {
    pub side: Side,
    /// 1-based index of this batch among its side's batches.
    pub index: u32,
    pub episodes: u32,
}

/// Splits `runs` episodes per side into batches of at most `batch`
/// episodes and orders them A B B A A B B A …
pub fn schedule(runs: u32, batch: u32) -> Vec<Batch> {
    let batch = batch.max(1);
    let sizes: Vec<u32> = (0..runs.div_ceil(batch))
        .map(|i| batch.min(runs - i * batch))
        .collect();
    let mut out = Vec::new();
    for (i, &episodes) in sizes.iter().enumerate() {
        let index = i as u32 + 1;
        let first = if i % 2 == 0 { Side::A } else { Side::B };
        let second = if first == Side::A { Side::B } else { Side::A };
        for side in [first, second] {
            out.push(Batch {
                side,
                index,
                episodes,
            });
        }
    }
    out
}

/// The batches of [`schedule`]`(runs, batch)` after its first round (one
/// batch of each side): what `--runs auto` boots once it has chosen
/// `runs`, having recorded the first round of `batch` episodes a side.
/// `runs` is at least `batch` (recorded episodes are kept), so the first
/// round of the full schedule is the one already done.
pub fn after_first_round(runs: u32, batch: u32) -> Vec<Batch> {
    let runs = runs.max(batch.max(1));
    schedule(runs, batch).into_iter().skip(2).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_alternate_abba_and_cover_all_runs() {
        let s = schedule(10, 4);
        let order: String = s.iter().map(|b| b.side.name()).collect();
        assert_eq!(order, "ABBAAB");
        for side in [Side::A, Side::B] {
            let total: u32 = s
                .iter()
                .filter(|b| b.side == side)
                .map(|b| b.episodes)
                .sum();
            assert_eq!(total, 10);
        }
        assert_eq!(s.last().unwrap().episodes, 2);
    }

    #[test]
    fn one_batch_is_one_boot_per_side() {
        let s = schedule(3, 5);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].episodes, 3);
    }

    #[test]
    fn auto_continues_the_schedule_it_started() {
        let first = schedule(5, 5);
        let rest = after_first_round(12, 5);
        let all: Vec<Batch> = first.iter().chain(&rest).copied().collect();
        assert_eq!(all, schedule(12, 5));
        let order: String = all.iter().map(|b| b.side.name()).collect();
        assert_eq!(order, "ABBAAB");
        assert!(after_first_round(5, 5).is_empty());
        assert!(
            after_first_round(3, 5).is_empty(),
            "never fewer than recorded"
        );
    }
}
