//! The guest's script: `pairs` pairs of one-episode recordings with the
//! collision logs on and off, the side that goes first alternating from
//! pair to pair (so drift inside the guest hits both sides alike). Each
//! recording writes its outputs in the guest's /tmp; only run.json (as
//! `/out/NAME.json`), the printed report (`/out/NAME.txt`) and the exit
//! status (`/out/steps.txt`) come back over the console.

/// The recorded run files of one side: `on-01.json`, `off-01.json`, ...
pub fn run_file(logs_on: bool, pair: u32) -> String {
    format!("{}-{pair:02}.json", side_name(logs_on))
}

/// Where each recording's exit status goes, as `NAME STATUS` lines.
pub const STEPS_FILE: &str = "steps.txt";

fn side_name(logs_on: bool) -> &'static str {
    if logs_on { "on" } else { "off" }
}

/// The script for `pairs` pairs of `--victim victim` recordings.
pub fn guest(pairs: u32, victim: &str) -> String {
    let mut script = format!(
        "mkdir -p /tmp/rec\n\
         rec() {{\n\
         name=$1; shift\n\
         reaper --quiet record --exact-locks --program-cost --victim {victim} \"$@\" -o /tmp/rec/$name > /out/$name.txt 2>&1\n\
         echo \"$name $?\" >> /out/{STEPS_FILE}\n\
         cp /tmp/rec/$name/run.json /out/$name.json\n\
         rm -rf /tmp/rec/$name\n\
         }}\n"
    );
    for pair in 1..=pairs {
        let first_on = pair % 2 == 1;
        for logs_on in [first_on, !first_on] {
            let name = run_file(logs_on, pair);
            let name = name.trim_end_matches(".json");
            let flag = if logs_on { "" } else { " --no-collision-log" };
            script.push_str(&format!("rec {name}{flag}\n"));
        }
    }
    script.push_str("true\n");
    script
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_alternate_which_side_goes_first() {
        let script = guest(2, "256M");
        let recs: Vec<&str> = script.lines().filter(|l| l.starts_with("rec ")).collect();
        assert_eq!(
            recs,
            [
                "rec on-01",
                "rec off-01 --no-collision-log",
                "rec off-02 --no-collision-log",
                "rec on-02"
            ]
        );
        assert!(script.contains(
            "reaper --quiet record --exact-locks --program-cost --victim 256M \"$@\" -o /tmp/rec/$name"
        ));
        assert_eq!(run_file(false, 7), "off-07.json");
    }
}
