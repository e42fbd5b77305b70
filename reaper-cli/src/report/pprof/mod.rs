//! pprof output (`profile.pb.gz`): the sampled kernel stacks of a run, or of
//! a run set, as a gzipped `perftools.profiles.Profile` for `go tool pprof`,
//! Grafana Pyroscope, Parca and other pprof readers.
//!
//! Each distinct in-kernel aggregated stack of each episode's context is one
//! sample with two values: its sample count and its sampled CPU time
//! (`cpu`/`nanoseconds`, the default); the period is the cpu-clock sampling
//! period. Samples carry the labels `context`, `episode` and
//! `victim_comm` (and `run` when several run files are merged, and
//! `lost_race` on the episodes whose mrelease caller lost the race,
//! [`crate::model::Episode::lost_race`]). Kernel frames are functions with
//! names only, in one mapping named [`KERNEL_MAPPING`] (as perf names the
//! kernel) with `has_functions` set: run files hold symbolized stacks, not
//! addresses, and an invented address would only mislead. `duration_nanos`
//! is the sum of the episodes' teardown windows (t = 0 → the last context
//! done), the time the samples were taken in.

pub mod proto;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::io::Write as _;

use crate::model::Run;
use proto::{Function, Label, Line, Location, Mapping, Profile, Sample, ValueType};

/// The file name `record` and `report --format pprof` write.
pub const FILE_NAME: &str = "profile.pb.gz";

/// The kernel's mapping name, as `perf` writes it.
pub const KERNEL_MAPPING: &str = "[kernel.kallsyms]";
/// The kernel mapping's id.
const KERNEL_MAPPING_ID: u64 = 1;

/// Label keys on every sample.
pub const LABEL_CONTEXT: &str = "context";
/// Episode index within its run file (a string label: continuous-profiling
/// backends such as Pyroscope keep string labels only).
pub const LABEL_EPISODE: &str = "episode";
/// The victim's comm.
pub const LABEL_VICTIM_COMM: &str = "victim_comm";
/// Index of the run file within a merged run set (numeric label).
pub const LABEL_RUN: &str = "run";
/// "true" on the samples of an episode whose mrelease caller lost the race
/// (no reaper-side work), absent on the others.
pub const LABEL_LOST_RACE: &str = "lost_race";

/// The string table under construction: index 0 is "" as pprof requires.
struct Strings {
    table: Vec<String>,
    index: HashMap<String, i64>,
}

impl Strings {
    fn new() -> Self {
        let mut strings = Self {
            table: Vec::new(),
            index: HashMap::new(),
        };
        strings.get("");
        strings
    }

    fn get(&mut self, s: &str) -> i64 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.table.len() as i64;
        self.table.push(s.to_owned());
        self.index.insert(s.to_owned(), i);
        i
    }
}

/// Functions and their locations, one location per function name.
struct Frames {
    ids: HashMap<String, u64>,
    functions: Vec<Function>,
    locations: Vec<Location>,
}

impl Frames {
    fn id(&mut self, name: &str, strings: &mut Strings) -> u64 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.functions.len() as u64 + 1;
        let name_index = strings.get(name);
        self.functions.push(Function {
            id,
            name: name_index,
            system_name: name_index,
        });
        self.locations.push(Location {
            id,
            mapping_id: KERNEL_MAPPING_ID,
            line: vec![Line { function_id: id }],
        });
        self.ids.insert(name.to_owned(), id);
        id
    }
}

/// The profile of one or more run files (a run set merges into one profile).
pub fn profile(runs: &[&Run]) -> Profile {
    let mut strings = Strings::new();
    let mut frames = Frames {
        ids: HashMap::new(),
        functions: Vec::new(),
        locations: Vec::new(),
    };
    let sample_type = vec![
        ValueType {
            r#type: strings.get("samples"),
            unit: strings.get("count"),
        },
        ValueType {
            r#type: strings.get("cpu"),
            unit: strings.get("nanoseconds"),
        },
    ];
    let keys = [LABEL_CONTEXT, LABEL_EPISODE, LABEL_VICTIM_COMM, LABEL_RUN].map(|k| strings.get(k));
    let mut samples = Vec::new();
    for (run_index, run) in runs.iter().enumerate() {
        for episode in &run.episodes {
            let comm = strings.get(&episode.victim.comm);
            let episode_name = strings.get(&episode.index.to_string());
            for context in &episode.contexts {
                let context_name = strings.get(context.context.name());
                for stack in &context.stacks {
                    let mut label = vec![
                        Label {
                            key: keys[0],
                            str: context_name,
                            num: 0,
                        },
                        Label {
                            key: keys[1],
                            str: episode_name,
                            num: 0,
                        },
                        Label {
                            key: keys[2],
                            str: comm,
                            num: 0,
                        },
                    ];
                    if runs.len() > 1 {
                        label.push(Label {
                            key: keys[3],
                            str: 0,
                            num: run_index as i64,
                        });
                    }
                    if episode.lost_race() {
                        // Interned only when used: profiles without a lost
                        // race keep the string table they always had.
                        label.push(Label {
                            key: strings.get(LABEL_LOST_RACE),
                            str: strings.get("true"),
                            num: 0,
                        });
                    }
                    samples.push(Sample {
                        location_id: stack
                            .frames
                            .iter()
                            .rev()
                            .map(|f| frames.id(f, &mut strings))
                            .collect(),
                        value: vec![
                            saturating_i64(stack.samples),
                            saturating_i64(stack.period_ns),
                        ],
                        label,
                    });
                }
            }
        }
    }
    let comment = comments(runs).iter().map(|c| strings.get(c)).collect();
    let first = runs.first();
    let mapping = vec![Mapping {
        id: KERNEL_MAPPING_ID,
        memory_start: 0,
        memory_limit: 0,
        file_offset: 0,
        filename: strings.get(KERNEL_MAPPING),
        build_id: 0,
        has_functions: true,
    }];
    let duration_nanos: u64 = runs
        .iter()
        .flat_map(|r| &r.episodes)
        .filter_map(crate::model::Episode::teardown_end_ns)
        .sum();
    Profile {
        mapping,
        duration_nanos: saturating_i64(duration_nanos),
        period_type: Some(sample_type[1].clone()),
        default_sample_type: sample_type[1].r#type,
        sample_type,
        sample: samples,
        location: frames.locations,
        function: frames.functions,
        period: first.map_or(0, |r| saturating_i64(r.recording.sample_period_ns)),
        time_nanos: runs
            .iter()
            .map(|r| r.recording.started_unix)
            .min()
            .map_or(0, |s| saturating_i64(s.saturating_mul(1_000_000_000))),
        comment,
        string_table: strings.table,
    }
}

fn saturating_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// What `go tool pprof -comments` shows: where and how the runs were taken.
fn comments(runs: &[&Run]) -> Vec<String> {
    let mut lines = Vec::new();
    let mut push = |line: String| {
        if !lines.contains(&line) {
            lines.push(line);
        }
    };
    for run in runs {
        push(format!("kernel {}", run.host.kernel_release));
        push(format!("arch {}", run.host.arch));
        push(format!("scenario {}", run.recording.scenario.description));
        push(format!(
            "recorded by {} {}",
            run.tool.name, run.tool.version
        ));
        push(format!(
            "cpu-clock sampling at {} Hz (period {} ns), stacks aggregated in the kernel",
            run.recording.freq_hz, run.recording.sample_period_ns
        ));
    }
    push(
        "duration: the episodes' teardown windows (t = 0 → the last context done), summed"
            .to_owned(),
    );
    push(format!("written by reaper {}", env!("CARGO_PKG_VERSION")));
    lines
}

/// The profile, protobuf-encoded and gzipped.
pub fn encode(profile: &Profile) -> Vec<u8> {
    let raw = prost::Message::encode_to_vec(profile);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&raw).expect("writing to memory");
    gz.finish().expect("writing to memory")
}

/// Each side of a comparison encoded (every run file of a side merged), for
/// `go tool pprof -diff_base a.pb.gz b.pb.gz`: `[(name, bytes); 2]`.
pub fn encode_pair(
    a: &crate::compare::load::RunSet,
    b: &crate::compare::load::RunSet,
) -> [(&'static str, Vec<u8>); 2] {
    let side = |set: &crate::compare::load::RunSet| {
        let runs: Vec<&Run> = set.runs.iter().map(|r| &r.run).collect();
        encode(&profile(&runs))
    };
    [("a.pb.gz", side(a)), ("b.pb.gz", side(b))]
}
