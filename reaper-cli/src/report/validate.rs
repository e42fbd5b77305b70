//! A run file is untrusted input (in CI it comes from pull-request
//! artifacts anyone can shape): the file's size is bounded before it is
//! read and its amounts before it is decoded. Every name in it that can
//! become part of a path (a context) is typed (`reaper_model::Context`), so
//! decoding refuses a name outside reaper's set, naming the field, before
//! anything is rendered.

/// Largest run file read. The largest real run is about 60 KB per episode
/// (stacks of three contexts) times `record --runs`' limit of 1000, about
/// 60 MB; four times that leaves room and still refuses a file meant to
/// exhaust memory.
pub const MAX_RUN_FILE_BYTES: u64 = 256 << 20;

/// Largest sum of all the amounts (samples, ns, counts) in one run file.
/// Every sum the report computes adds up a subset of them, so none can
/// overflow a u64; a real run is many orders of magnitude below (1000
/// episodes of 10 s of CPU time each is about 2^43 ns).
pub const MAX_TOTAL_AMOUNT: u128 = 1 << 62;

/// Keys whose numbers are addresses, not amounts (never summed).
const ADDRESS_KEYS: &[&str] = &["addresses", "first", "last"];

/// Checks that the amounts of a run file, summed, stay below
/// [`MAX_TOTAL_AMOUNT`]; run on the raw JSON so a new field is covered
/// without being listed.
pub fn check_amounts(raw: &serde_json::Value) -> Result<(), String> {
    fn sum(v: &serde_json::Value, total: &mut u128) {
        match v {
            serde_json::Value::Number(n) => {
                let amount = n
                    .as_u64()
                    .map(u128::from)
                    .or_else(|| n.as_i64().map(|i| u128::from(i.unsigned_abs())))
                    .unwrap_or(0);
                *total = total.saturating_add(amount);
            }
            serde_json::Value::Array(items) => items.iter().for_each(|i| sum(i, total)),
            serde_json::Value::Object(map) => map
                .iter()
                .filter(|(k, _)| !ADDRESS_KEYS.contains(&k.as_str()))
                .for_each(|(_, v)| sum(v, total)),
            _ => {}
        }
    }
    let mut total = 0u128;
    sum(raw, &mut total);
    if total > MAX_TOTAL_AMOUNT {
        return Err(format!(
            "its counts and durations add up to {total}, beyond any real run (limit {MAX_TOTAL_AMOUNT})"
        ));
    }
    Ok(())
}
