//! The `reaper-lab` binary (its command line comes in a later step).

fn main() {}
