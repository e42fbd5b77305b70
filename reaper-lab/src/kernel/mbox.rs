//! Mailbox files of patches: what `git format-patch --stdout` writes, `git
//! am` takes and b4 or lore hand out, split into their mails.

/// The mails of an mbox (each from its `From ` separator line on), or the
/// whole text as one when it is not an mbox. A separator is a line that
/// starts with `From ` followed by a header line (`From:`, `Date:`, ...);
/// inside a mail such lines are escaped (`>From `), and no diff line
/// starts with `From `.
pub fn split(text: &str) -> Vec<&str> {
    let lines: Vec<(usize, &str)> = text
        .split_inclusive('\n')
        .scan(0usize, |at, line| {
            let start = *at;
            *at += line.len();
            Some((start, line))
        })
        .collect();
    let is_header = |l: &str| {
        l.split_once(':')
            .is_some_and(|(k, _)| !k.is_empty() && !k.contains(char::is_whitespace))
    };
    let starts: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(i, (_, l))| {
            l.starts_with("From ") && lines.get(i + 1).is_some_and(|(_, next)| is_header(next))
        })
        .map(|(_, (at, _))| *at)
        .collect();
    if starts.first() != Some(&0) {
        return vec![text];
    }
    starts
        .iter()
        .zip(starts.iter().skip(1).chain(std::iter::once(&text.len())))
        .map(|(&a, &b)| &text[a..b])
        .collect()
}

/// Whether a mail carries a diff (a `--- ` line followed by a `+++ ` one).
pub fn has_diff(mail: &str) -> bool {
    let mut lines = mail.lines().peekable();
    while let Some(line) = lines.next() {
        if line.starts_with("--- ") && lines.peek().is_some_and(|n| n.starts_with("+++ ")) {
            return true;
        }
    }
    false
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// What `git format-patch --cover-letter --stdout` writes for two
    /// commits: a cover letter and two mails.
    pub const SERIES: &str = "\
From 1111111111111111111111111111111111111111 Mon Sep 17 00:00:00 2001
From: A U Thor <a@example.org>
Subject: [PATCH 0/2] mm: two changes

*** BLURB HERE ***

From 2222222222222222222222222222222222222222 Mon Sep 17 00:00:00 2001
From: A U Thor <a@example.org>
Subject: [PATCH 1/2] mm/oom_kill: first change that has a long
 subject folded over two lines

>From the commit message, escaped.
---
diff --git a/mm/oom_kill.c b/mm/oom_kill.c
--- a/mm/oom_kill.c
+++ b/mm/oom_kill.c
@@ -1 +1 @@
-a
+b
--
2.39.5

From 3333333333333333333333333333333333333333 Mon Sep 17 00:00:00 2001
From: A U Thor <a@example.org>
Subject: [PATCH 2/2] mm: second

---
--- a/mm/mmap.c
+++ b/mm/mmap.c
@@ -1 +1 @@
-c
+d
";

    #[test]
    fn an_mbox_is_split_into_its_mails() {
        let mails = split(SERIES);
        assert_eq!(mails.len(), 3);
        assert!(mails[1].contains("first change") && !mails[1].contains("second"));
        assert!(!has_diff(mails[0]), "the cover letter");
        assert!(has_diff(mails[1]) && has_diff(mails[2]));
    }

    #[test]
    fn one_mail_or_a_plain_diff_is_one() {
        let one = &SERIES[SERIES.find("From 3333").unwrap()..];
        assert_eq!(split(one), [one]);
        let diff = "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n";
        assert_eq!(split(diff), [diff]);
    }
}
