//! The pprof writer, checked with an independent decoder: Google's published
//! `profile.proto` (kept under `tests/data/pprof/`) is parsed at test time
//! and the gunzipped output decoded through protobuf reflection, so nothing
//! here shares the writer's message definitions.

use std::collections::{BTreeMap, HashMap};
use std::io::Read as _;
use std::path::{Path, PathBuf};

use protobuf::MessageDyn;
use protobuf::reflect::{FileDescriptor, MessageDescriptor};

use super::*;
use crate::report::load_run;

fn data(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(path)
}

/// A decoded sample: values, labels (key → string or number), frames
/// (leaf first, by function name).
#[derive(Debug)]
struct DecodedSample {
    values: Vec<i64>,
    str_labels: HashMap<String, String>,
    num_labels: HashMap<String, i64>,
    frames: Vec<String>,
}

#[derive(Debug)]
struct Decoded {
    sample_types: Vec<(String, String)>,
    default_sample_type: String,
    period_type: (String, String),
    period: i64,
    comments: Vec<String>,
    samples: Vec<DecodedSample>,
    /// Mapping names, locations with an address, locations in no mapping.
    mappings: Vec<(String, bool)>,
    addressed_locations: usize,
    unmapped_locations: usize,
    duration_nanos: i64,
}

fn profile_descriptor() -> MessageDescriptor {
    let dir = data("pprof");
    let parsed = protobuf_parse::Parser::new()
        .pure()
        .include(&dir)
        .input(dir.join("profile.proto"))
        .parse_and_typecheck()
        .expect("Google's profile.proto parses");
    let files = FileDescriptor::new_dynamic_fds(parsed.file_descriptors, &[]).unwrap();
    files
        .iter()
        .find_map(|f| f.message_by_package_relative_name("Profile"))
        .expect("profile.proto defines Profile")
}

fn field_i64(m: &dyn MessageDyn, name: &str) -> i64 {
    let d = m.descriptor_dyn();
    let f = d
        .field_by_name(name)
        .unwrap_or_else(|| panic!("no field {name}"));
    let v = f.get_singular_field_or_default(m);
    v.to_i64()
        .or_else(|| v.to_u64().map(|u| u as i64))
        .unwrap_or_else(|| panic!("{name} is not an integer"))
}

fn repeated<'a>(m: &'a dyn MessageDyn, name: &str) -> protobuf::reflect::ReflectRepeatedRef<'a> {
    m.descriptor_dyn()
        .field_by_name(name)
        .unwrap_or_else(|| panic!("no field {name}"))
        .get_repeated(m)
}

fn decode(gzipped: &[u8]) -> Decoded {
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(gzipped)
        .read_to_end(&mut bytes)
        .expect("the output is gzip");
    let message = profile_descriptor().parse_from_bytes(&bytes).unwrap();
    let p: &dyn MessageDyn = &*message;
    let strings: Vec<String> = repeated(p, "string_table")
        .into_iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(strings[0], "", "string_table[0] must be empty");
    let s = |i: i64| strings[usize::try_from(i).unwrap()].clone();
    let value_type = |m: &dyn MessageDyn| (s(field_i64(m, "type")), s(field_i64(m, "unit")));
    let functions: HashMap<i64, String> = repeated(p, "function")
        .into_iter()
        .map(|f| {
            let f = f.to_message().unwrap();
            (field_i64(&*f, "id"), s(field_i64(&*f, "name")))
        })
        .collect();
    let mut addressed_locations = 0;
    let mut unmapped_locations = 0;
    let mapping_ids: Vec<i64> = repeated(p, "mapping")
        .into_iter()
        .map(|m| field_i64(&*m.to_message().unwrap(), "id"))
        .collect();
    let locations: HashMap<i64, Vec<String>> = repeated(p, "location")
        .into_iter()
        .map(|l| {
            let l = l.to_message().unwrap();
            if field_i64(&*l, "address") != 0 {
                addressed_locations += 1;
            }
            if !mapping_ids.contains(&field_i64(&*l, "mapping_id")) {
                unmapped_locations += 1;
            }
            let names = repeated(&*l, "line")
                .into_iter()
                .map(|line| {
                    functions[&field_i64(&*line.to_message().unwrap(), "function_id")].clone()
                })
                .collect();
            (field_i64(&*l, "id"), names)
        })
        .collect();
    let samples = repeated(p, "sample")
        .into_iter()
        .map(|sample| {
            let sample = sample.to_message().unwrap();
            let mut decoded = DecodedSample {
                values: repeated(&*sample, "value")
                    .into_iter()
                    .map(|v| v.to_i64().unwrap())
                    .collect(),
                str_labels: HashMap::new(),
                num_labels: HashMap::new(),
                frames: repeated(&*sample, "location_id")
                    .into_iter()
                    .flat_map(|id| locations[&(id.to_u64().unwrap() as i64)].clone())
                    .collect(),
            };
            for label in &repeated(&*sample, "label") {
                let label = label.to_message().unwrap();
                let key = s(field_i64(&*label, "key"));
                match field_i64(&*label, "str") {
                    0 => decoded.num_labels.insert(key, field_i64(&*label, "num")),
                    i => decoded.str_labels.insert(key, s(i)).map(|_| 0),
                };
            }
            decoded
        })
        .collect();
    let period_type = p
        .descriptor_dyn()
        .field_by_name("period_type")
        .unwrap()
        .get_singular(p)
        .expect("period_type is set")
        .to_message()
        .unwrap();
    Decoded {
        sample_types: repeated(p, "sample_type")
            .into_iter()
            .map(|v| value_type(&*v.to_message().unwrap()))
            .collect(),
        default_sample_type: s(field_i64(p, "default_sample_type")),
        period_type: value_type(&*period_type),
        period: field_i64(p, "period"),
        comments: repeated(p, "comment")
            .into_iter()
            .map(|v| s(v.to_i64().unwrap()))
            .collect(),
        samples,
        mappings: repeated(p, "mapping")
            .into_iter()
            .map(|m| {
                let m = m.to_message().unwrap();
                let has_functions = m
                    .descriptor_dyn()
                    .field_by_name("has_functions")
                    .unwrap()
                    .get_singular_field_or_default(&*m)
                    .to_bool()
                    .unwrap();
                (s(field_i64(&*m, "filename")), has_functions)
            })
            .collect(),
        addressed_locations,
        unmapped_locations,
        duration_nanos: field_i64(p, "duration_nanos"),
    }
}

/// Sampled ns per (episode, context) in a run file.
fn run_totals(run: &Run) -> BTreeMap<(i64, String), i64> {
    let mut totals = BTreeMap::new();
    for e in &run.episodes {
        for c in &e.contexts {
            let ns: u64 = c.stacks.iter().map(|s| s.period_ns).sum();
            *totals
                .entry((i64::from(e.index), c.context.name().to_owned()))
                .or_default() += ns as i64;
        }
    }
    totals
}

/// The same from the decoded profile's `episode` and `context` labels.
fn decoded_totals(d: &Decoded) -> BTreeMap<(i64, String), i64> {
    let cpu = d.sample_types.iter().position(|t| t.0 == "cpu").unwrap();
    let mut totals = BTreeMap::new();
    for s in &d.samples {
        let episode = s.str_labels[LABEL_EPISODE].parse().unwrap();
        let key = (episode, s.str_labels[LABEL_CONTEXT].clone());
        *totals.entry(key).or_default() += s.values[cpu];
    }
    totals
}

const FIXTURES: [&str; 3] = [
    "function_timing/sid-x86_64.run.json",
    "report/6.18-mrelease.run.json",
    "report/6.18-oom.run.json",
];

#[test]
fn per_context_totals_equal_the_run_files() {
    for fixture in FIXTURES {
        let run = load_run(&data(fixture)).unwrap();
        let decoded = decode(&encode(&profile(&[&run])));
        let expected = run_totals(&run);
        assert!(expected.values().any(|ns| *ns > 0), "{fixture}: no samples");
        assert_eq!(decoded_totals(&decoded), expected, "{fixture}");
    }
}

#[test]
fn header_says_what_the_values_are_and_where_they_come_from() {
    let run = load_run(&data(FIXTURES[0])).unwrap();
    let d = decode(&encode(&profile(&[&run])));
    assert_eq!(
        d.sample_types,
        [
            ("samples".into(), "count".into()),
            ("cpu".into(), "nanoseconds".into())
        ]
    );
    assert_eq!(d.default_sample_type, "cpu");
    assert_eq!(d.period_type, ("cpu".into(), "nanoseconds".into()));
    assert_eq!(d.period, run.recording.sample_period_ns as i64);
    for wanted in [
        format!("kernel {}", run.host.kernel_release),
        format!("arch {}", run.host.arch),
        format!("scenario {}", run.recording.scenario.description),
        format!("recorded by reaper {}", run.tool.version),
    ] {
        assert!(
            d.comments.contains(&wanted),
            "{wanted:?} not in {:?}",
            d.comments
        );
    }
}

#[test]
fn stacks_are_named_kernel_frames_leaf_first_without_addresses() {
    let run = load_run(&data(FIXTURES[1])).unwrap();
    let d = decode(&encode(&profile(&[&run])));
    assert_eq!(d.mappings, [(KERNEL_MAPPING.to_owned(), true)]);
    assert_eq!((d.addressed_locations, d.unmapped_locations), (0, 0));
    let episode = &run.episodes[0];
    let context = &episode.contexts[0];
    let stack = &context.stacks[0];
    let leaf_first: Vec<String> = stack.frames.iter().rev().cloned().collect();
    let found = d
        .samples
        .iter()
        .find(|s| s.frames == leaf_first && s.str_labels[LABEL_CONTEXT] == context.context.name())
        .expect("the first stack is a sample");
    assert_eq!(found.values, [stack.samples as i64, stack.period_ns as i64]);
    assert_eq!(found.str_labels[LABEL_VICTIM_COMM], episode.victim.comm);
    assert_eq!(found.str_labels[LABEL_EPISODE], episode.index.to_string());
    assert!(!found.num_labels.contains_key(LABEL_RUN));
}

#[test]
fn a_merged_run_set_labels_each_run() {
    let a = load_run(&data(FIXTURES[1])).unwrap();
    let b = load_run(&data(FIXTURES[2])).unwrap();
    let d = decode(&encode(&profile(&[&a, &b])));
    let runs: std::collections::BTreeSet<i64> =
        d.samples.iter().map(|s| s.num_labels[LABEL_RUN]).collect();
    assert_eq!(runs.into_iter().collect::<Vec<_>>(), [0, 1]);
    let samples = |r: &Run| {
        r.episodes
            .iter()
            .flat_map(|e| &e.contexts)
            .map(|c| c.stacks.len())
            .sum::<usize>()
    };
    assert_eq!(d.samples.len(), samples(&a) + samples(&b));
}

/// `duration_nanos` is the episodes' teardown windows summed, and the
/// comments say so.
#[test]
fn the_duration_is_the_teardown_windows() {
    let run = load_run(&data(FIXTURES[1])).unwrap();
    let d = decode(&encode(&profile(&[&run])));
    let expected: u64 = run
        .episodes
        .iter()
        .filter_map(crate::model::Episode::teardown_end_ns)
        .sum();
    assert!(expected > 0);
    assert_eq!(d.duration_nanos, expected as i64);
    assert!(d.comments.iter().any(|c| c.starts_with("duration: ")));
}

/// Issue 22: the samples of a lost race (here an old file's, known only by
/// its ESRCH return value) carry `lost_race=true`; the others no such label.
#[test]
fn lost_races_are_labelled() {
    let run = load_run(&data("compare/vm-bookworm-x86_64/run.json")).unwrap();
    let d = decode(&encode(&profile(&[&run])));
    for s in &d.samples {
        let episode: u32 = s.str_labels[LABEL_EPISODE].parse().unwrap();
        let lost = run.episodes[episode as usize].lost_race();
        assert_eq!(
            s.str_labels.get(LABEL_LOST_RACE).map(String::as_str),
            lost.then_some("true"),
            "episode {episode}"
        );
    }
    assert!(
        d.samples
            .iter()
            .any(|s| s.str_labels.contains_key(LABEL_LOST_RACE))
    );
}
