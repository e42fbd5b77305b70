//! speedscope's JSON file format (`speedscope.json`, schema
//! <https://www.speedscope.app/file-format-schema.json>): one sampled
//! profile per episode and context, weighted by sampled CPU nanoseconds, so
//! speedscope.app's profile selector switches between the victim's exit,
//! the mrelease caller and the oom_reaper of each episode.

use std::collections::HashMap;

use serde::Serialize;

use crate::model::Run;

/// The file name `report --format speedscope` writes.
pub const FILE_NAME: &str = "speedscope.json";

/// The schema URL speedscope checks.
pub const SCHEMA: &str = "https://www.speedscope.app/file-format-schema.json";

/// The whole file.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct File {
    /// Always [`SCHEMA`].
    #[serde(rename = "$schema")]
    pub schema: &'static str,
    /// Frames shared by every profile.
    pub shared: Shared,
    /// One per episode × context.
    pub profiles: Vec<Profile>,
    /// Shown in the title bar.
    pub name: String,
    /// The writer.
    pub exporter: String,
    /// Profile shown first.
    #[serde(rename = "activeProfileIndex")]
    pub active_profile_index: usize,
}

/// The shared frame table.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Shared {
    /// Frames, by index.
    pub frames: Vec<Frame>,
}

/// One frame: a kernel function name.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Frame {
    /// Function name.
    pub name: String,
}

/// A sampled profile.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    /// Always "sampled".
    pub r#type: &'static str,
    /// e.g. "episode 0 victim_exit".
    pub name: String,
    /// Always "nanoseconds".
    pub unit: &'static str,
    /// 0.
    pub start_value: u64,
    /// Sum of the weights.
    pub end_value: u64,
    /// Stacks as frame indices, outermost caller first.
    pub samples: Vec<Vec<usize>>,
    /// Sampled ns per stack.
    pub weights: Vec<u64>,
}

/// The speedscope file of a run.
pub fn file(run: &Run) -> File {
    let mut frames: Vec<Frame> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut profiles = Vec::new();
    for episode in &run.episodes {
        for context in &episode.contexts {
            let mut samples = Vec::new();
            let mut weights = Vec::new();
            for stack in &context.stacks {
                samples.push(
                    stack
                        .frames
                        .iter()
                        .map(|f| {
                            *index.entry(f.clone()).or_insert_with(|| {
                                frames.push(Frame { name: f.clone() });
                                frames.len() - 1
                            })
                        })
                        .collect(),
                );
                weights.push(stack.period_ns);
            }
            profiles.push(Profile {
                r#type: "sampled",
                name: format!(
                    "episode {} {}{}",
                    episode.index,
                    context.context,
                    if episode.lost_race() {
                        " (mrelease lost the race)"
                    } else {
                        ""
                    }
                ),
                unit: "nanoseconds",
                start_value: 0,
                end_value: weights.iter().sum(),
                samples,
                weights,
            });
        }
    }
    File {
        schema: SCHEMA,
        shared: Shared { frames },
        profiles,
        name: format!(
            "reaper: {} on {} {}",
            run.recording.scenario.description, run.host.kernel_release, run.host.arch
        ),
        exporter: format!("reaper {}", env!("CARGO_PKG_VERSION")),
        active_profile_index: 0,
    }
}

/// The file as JSON.
pub fn render(run: &Run) -> String {
    serde_json::to_string(&file(run)).expect("a speedscope file serializes") + "\n"
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::Value;

    use super::*;
    use crate::report::load_run;

    /// Checks the fields speedscope's file-format schema requires of a file
    /// and of a sampled profile, and that each profile's weights are its
    /// context's sampled ns in the run file.
    #[test]
    fn sampled_profiles_match_the_run_file() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/function_timing/sid-x86_64.run.json");
        let run = load_run(&path).unwrap();
        let v: Value = serde_json::from_str(&render(&run)).unwrap();
        assert_eq!(v["$schema"], SCHEMA);
        let frames = v["shared"]["frames"].as_array().unwrap();
        assert!(frames.iter().all(|f| f["name"].is_string()));
        let profiles = v["profiles"].as_array().unwrap();
        let contexts: Vec<_> = run.episodes.iter().flat_map(|e| &e.contexts).collect();
        assert_eq!(profiles.len(), contexts.len());
        for (p, c) in profiles.iter().zip(contexts) {
            assert_eq!(p["type"], "sampled");
            assert_eq!(p["unit"], "nanoseconds");
            assert!(p["name"].as_str().unwrap().contains(c.context.name()));
            let samples = p["samples"].as_array().unwrap();
            let weights = p["weights"].as_array().unwrap();
            assert_eq!(samples.len(), weights.len());
            let total: u64 = weights.iter().map(|w| w.as_u64().unwrap()).sum();
            assert_eq!(total, c.stacks.iter().map(|s| s.period_ns).sum::<u64>());
            assert_eq!(p["endValue"].as_u64().unwrap(), total);
            for (sample, stack) in samples.iter().zip(&c.stacks) {
                let names: Vec<&str> = sample
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|i| {
                        frames[i.as_u64().unwrap() as usize]["name"]
                            .as_str()
                            .unwrap()
                    })
                    .collect();
                assert_eq!(names, stack.frames);
            }
        }
    }
}
