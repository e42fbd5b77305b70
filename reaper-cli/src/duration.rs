//! Durations as text: the one place that turns nanoseconds (or
//! milliseconds) into the numbers reaper prints, and a run's start time
//! into the date it prints ([`utc`]).
//!
//! Each output keeps the precision it always had, under a name that says
//! where it is used, so the goldens do not move and a new table picks a
//! precision by name rather than by a format string of its own. The
//! functions print the number only; the caller adds the unit where its
//! layout wants one ("12.345 ms", or a "(ms)" column header).

/// Nanoseconds per millisecond.
pub const NS_PER_MS: f64 = 1e6;
/// Nanoseconds per microsecond.
pub const NS_PER_US: f64 = 1e3;

/// Digits after the decimal point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Precision(usize);

impl Precision {
    /// The summary box: 0.1 ms, the seed thread's precision.
    pub const SUMMARY: Self = Self(1);
    /// The recorder's progress lines: 0.1 ms, as the summary box.
    pub const PROGRESS: Self = Self(1);
    /// Exact and sampled periods in the function-timing tables: 0.01 ms
    /// (short functions take tens of µs in total).
    pub const EXACT_PERIOD: Self = Self(2);
    /// Timeline times and latencies: 1 µs, written in ms.
    pub const TIMELINE: Self = Self(3);
    /// Total lock wait per stack: 1 µs, written in ms.
    pub const LOCK_WAIT_TOTAL: Self = Self(3);
    /// The sampled "Period (ms)" of key functions: 1 ns, written in ms
    /// (the exact figure the period sums to, as simpleperf prints it).
    pub const KEY_FUNCTION_PERIOD: Self = Self(6);
    /// Per-call mean and maximum in µs (exact timing, longest lock wait):
    /// 0.1 µs (a call takes from about 1 µs up).
    pub const PER_CALL_US: Self = Self(1);

    /// The precision that suits a millisecond value's size in comparisons:
    /// three significant digits or so (0.1 ms from 10 ms up, 0.01 ms from
    /// 0.1 ms, else 0.001 ms).
    pub fn for_size(ms: f64) -> Self {
        let a = ms.abs();
        if a >= 10.0 {
            Self(1)
        } else if a >= 0.1 {
            Self(2)
        } else {
            Self(3)
        }
    }
}

/// Nanoseconds as milliseconds, e.g. `ms(1_234_567, Precision::EXACT_PERIOD)`
/// is "1.23".
pub fn ms(ns: u64, precision: Precision) -> String {
    ms_value(ns as f64 / NS_PER_MS, precision)
}

/// Signed nanoseconds (a time relative to an event, e.g. the kill) as
/// milliseconds, e.g. "-0.013".
pub fn ms_signed(ns: i64, precision: Precision) -> String {
    ms_value(ns as f64 / NS_PER_MS, precision)
}

/// A millisecond value, e.g. "279.2".
pub fn ms_value(ms: f64, precision: Precision) -> String {
    format!("{ms:.*}", precision.0)
}

/// Nanoseconds as microseconds, e.g. "1341.4".
pub fn us(ns: u64, precision: Precision) -> String {
    format!("{:.*}", precision.0, ns as f64 / NS_PER_US)
}

/// A microsecond value, e.g. "227.9".
pub fn us_value(us: f64, precision: Precision) -> String {
    format!("{us:.*}", precision.0)
}

/// A millisecond value with [`Precision::for_size`]; zero (of either sign)
/// is "0.0".
pub fn ms_for_size(ms: f64) -> String {
    if ms == 0.0 {
        return ms_value(0.0, Precision::SUMMARY);
    }
    ms_value(ms, Precision::for_size(ms))
}

/// A Unix time as "YYYY-MM-DD HH:MM:SS UTC" (civil-from-days, proleptic
/// Gregorian calendar).
pub fn utc(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_764_108_245), "2025-11-25 22:04:05 UTC");
    }

    #[test]
    fn named_precisions_keep_each_outputs_digits() {
        assert_eq!(ms(279_249_999, Precision::SUMMARY), "279.2");
        assert_eq!(ms(1_341_400, Precision::EXACT_PERIOD), "1.34");
        assert_eq!(ms(12_345_678, Precision::TIMELINE), "12.346");
        assert_eq!(us(1_341_449, Precision::PER_CALL_US), "1341.4");
        assert_eq!(ms_value(5.26, Precision::SUMMARY), "5.3");
        assert_eq!(ms_signed(-12_600, Precision::TIMELINE), "-0.013");
    }

    #[test]
    fn precision_follows_size() {
        assert_eq!(ms_for_size(132.64), "132.6");
        assert_eq!(ms_for_size(1.234), "1.23");
        assert_eq!(ms_for_size(0.0123), "0.012");
        assert_eq!(ms_for_size(0.0), "0.0");
        assert_eq!(ms_for_size(-0.0), "0.0");
        assert_eq!(ms_for_size(-12.0), "-12.0");
    }
}
