//! The derived report: what every renderer prints, computed once from a run.
//!
//! The types are reaper-model's [`reaper_model::output::report`] (readers of
//! `--json` decode with them); this module re-exports them for the report's
//! builders and renderers. The analysis (`analysis.rs`) fills them from a
//! [`Run`](crate::model::Run); the text, JSON, folded and SVG renderers only
//! read them.

pub use reaper_model::output::report::{
    Bucket, CallGraph, CallNode, CallsNotTimed, Cell, CollisionReport, ContextReport,
    CorrectedPeriod, CounterLine, EpisodeCollisions, EpisodeExact, EpisodeReport, EpisodeTiming,
    ExactRow, ExactTable, FunctionTimingReport, Header, Histogram, Holder, HolderRow, HolderSource,
    KeyFunction, LockWaitRow, LockWaits, Loss, OrderCount, OrderEvidence, OrderUnknown, ProbeHits,
    ProbeOverhead, ProgramCostReport, ProgramCostRow, ReaperOrder, ReclaimNotMeasured,
    ReclaimReport, ReclaimRow, Report, RowId, RowStats, Summary, SummaryRow, SymbolCost, TimeZero,
    Value,
};
