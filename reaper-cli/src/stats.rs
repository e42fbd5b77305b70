//! Order statistics of small samples (episodes, runs): the one median,
//! minimum and maximum used by the report's summary and by `diff`/`gate`.
//! Values are sorted with `f64::total_cmp`, so a NaN cannot panic a sort.

/// Median of a sample (mean of the middle two for even lengths); `None`
/// when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    Some(if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    })
}

/// Smallest value; `None` when empty.
pub fn min(values: &[f64]) -> Option<f64> {
    values.iter().copied().reduce(f64::min)
}

/// Largest value; `None` when empty.
pub fn max(values: &[f64]) -> Option<f64> {
    values.iter().copied().reduce(f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_statistics() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        assert_eq!(min(&[2.0, -1.0]), Some(-1.0));
        assert_eq!(max(&[2.0, -1.0]), Some(2.0));
        assert_eq!(min(&[]), None);
        assert_eq!(max(&[]), None);
    }
}
