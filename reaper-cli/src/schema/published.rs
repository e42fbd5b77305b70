//! The JSON Schemas reaper publishes: run.json and every `--json` output,
//! derived from the Rust types with schemars so they cannot drift from what
//! is written. The committed copies live in `docs/schemas/`; a unit test
//! fails when the types change and the copies were not regenerated
//! (`REAPER_BLESS=1 cargo test -p reaper-cli --lib schema`).

use schemars::{JsonSchema, Schema, generate::SchemaSettings};

/// One published schema: the file under `docs/schemas/` and what it describes.
pub struct Published {
    /// File name under `docs/schemas/`.
    pub file: &'static str,
    /// What writes documents of this schema.
    pub written_by: &'static str,
    /// The schema, from the type.
    pub schema: fn() -> Schema,
}

/// Every published schema.
pub const PUBLISHED: &[Published] = &[
    Published {
        file: "run.schema.json",
        written_by: "reaper record -o DIR (DIR/run.json)",
        schema: schema_of::<crate::model::Run>,
    },
    Published {
        file: "report.schema.json",
        written_by: "reaper report --json, reaper record --json",
        schema: schema_of::<crate::report::Report>,
    },
    Published {
        file: "diff.schema.json",
        written_by: "reaper diff --json",
        schema: schema_of::<crate::compare::diff::Diff>,
    },
    Published {
        file: "gate.schema.json",
        written_by: "reaper gate --json",
        schema: schema_of::<crate::compare::gate::GateReport>,
    },
    Published {
        file: "doctor.schema.json",
        written_by: "reaper doctor --json",
        schema: schema_of::<crate::doctor::Diagnosis>,
    },
];

/// The draft 2020-12 schema of `T`, for documents as serialized.
pub fn schema_of<T: JsonSchema>() -> Schema {
    SchemaSettings::draft2020_12()
        .for_serialize()
        .into_generator()
        .into_root_schema_for::<T>()
}

/// A schema as committed: pretty JSON with a final newline.
pub fn render(schema: &Schema) -> String {
    serde_json::to_string_pretty(schema).expect("a schema serializes") + "\n"
}
