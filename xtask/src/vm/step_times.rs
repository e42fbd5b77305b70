//! Where a VM cell's time went: the cell script marks the guest's uptime
//! after each step (`STEP UPTIME_S` lines), and this turns the marks into
//! one log line of per-step durations, so a slow CI run says which step
//! of which cell grew.

/// "boot 5.4 s, doctor 49.3 s, record 65.2 s" from the marks: the first
/// mark is the guest's uptime when the script started (the boot), each
/// later one the step that ended there. `None` when there is no mark.
pub fn summary(marks: &str) -> Option<String> {
    let mut previous: Option<f64> = None;
    let mut parts = Vec::new();
    for line in marks.lines() {
        // The names are the cell script's own marks; anything else in the
        // guest's file (a torn write, bytes a broken kernel left) is skipped,
        // never printed to the log.
        let Some((step, uptime)) = line.split_once(' ') else {
            continue;
        };
        if step.is_empty() || !step.bytes().all(|b| b.is_ascii_lowercase() || b == b'-') {
            continue;
        }
        let Ok(uptime) = uptime.trim().parse::<f64>() else {
            continue;
        };
        let (name, took) = match previous {
            None => ("boot", uptime),
            Some(before) => (step, uptime - before),
        };
        parts.push(format!("{name} {took:.1} s"));
        previous = Some(uptime);
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::summary;

    #[test]
    fn each_step_is_the_time_since_the_previous_mark() {
        let marks = "start 5.44\ndoctor 54.75\nrecord 119.91\nrecord-vmas 232.44\n";
        assert_eq!(
            summary(marks).as_deref(),
            Some("boot 5.4 s, doctor 49.3 s, record 65.2 s, record-vmas 112.5 s")
        );
    }

    #[test]
    fn torn_lines_are_skipped_and_no_marks_say_so() {
        assert_eq!(
            summary("start 2.0\ndoctor\nrecord 4.5\n").as_deref(),
            Some("boot 2.0 s, record 2.5 s")
        );
        assert_eq!(summary(""), None);
        assert_eq!(
            summary("start 1.0\n\x1b]0;title\x07 2.0\nrecord 3.0\n").as_deref(),
            Some("boot 1.0 s, record 2.0 s"),
            "a name that is not a mark is not printed"
        );
    }
}
