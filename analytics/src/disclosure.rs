//! Statistical disclosure control of public outputs.
//!
//! Primary suppression withholds every cell with fewer than `min_cell` observations (SISTAN
//! rules require at least 3; civica's default is 5). Secondary suppression then makes sure a
//! withheld cell cannot be recomputed from a published total: along every dimension, a group
//! of cells that differ only in that dimension (whose total is published elsewhere, e.g. on
//! the overview) never has exactly one withheld cell; when it does, its smallest published
//! cell is withheld too. The marker of a withheld cell is an empty value and
//! `flag = suppressed`.

use std::collections::BTreeMap;

use crate::kpi::{Flag, KpiRow};

/// Applies primary and secondary suppression to `rows` broken down by `n_dims` dimensions.
pub fn suppress(rows: &mut [KpiRow], n_dims: usize, min_cell: u64) {
    let mut hidden: Vec<bool> = rows.iter().map(|r| r.n.unwrap_or(0) < min_cell).collect();
    // Each pass can only add cells, so this ends after at most `rows.len()` passes.
    for _ in 0..=rows.len() {
        let mut changed = false;
        for d in 0..n_dims {
            let mut groups: BTreeMap<Vec<&str>, Vec<usize>> = BTreeMap::new();
            for (i, row) in rows.iter().enumerate() {
                let key: Vec<&str> = row
                    .dims
                    .iter()
                    .enumerate()
                    .filter(|(k, _)| *k != d)
                    .map(|(_, v)| v.as_str())
                    .collect();
                groups.entry(key).or_default().push(i);
            }
            for members in groups.values() {
                let withheld = members.iter().filter(|i| hidden[**i]).count();
                if members.len() >= 2 && withheld == 1 {
                    let smallest = members
                        .iter()
                        .filter(|i| !hidden[**i])
                        .min_by_key(|i| rows[**i].n.unwrap_or(0));
                    if let Some(i) = smallest {
                        hidden[*i] = true;
                        changed = true;
                    }
                }
            }
        }
        if !changed {
            break;
        }
    }
    for (row, hide) in rows.iter_mut().zip(hidden) {
        if hide {
            row.value = None;
            row.numerator = None;
            row.denominator = None;
            row.n = None;
            row.ci_low = None;
            row.ci_high = None;
            row.change = None;
            row.flag = Some(Flag::Suppressed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn row(dims: &[&str], n: u64) -> KpiRow {
        KpiRow {
            dims: dims.iter().map(|d| d.to_string()).collect(),
            value: Some(50.0),
            numerator: Some(n as f64 / 2.0),
            denominator: Some(n as f64),
            n: Some(n),
            ci_low: None,
            ci_high: None,
            change: None,
            flag: None,
        }
    }

    #[test]
    fn a_lone_small_cell_takes_the_next_smallest_with_it() {
        let mut rows = vec![row(&["a"], 3), row(&["b"], 40), row(&["c"], 12)];
        suppress(&mut rows, 1, 5);
        let flags: Vec<_> = rows.iter().map(|r| r.flag).collect();
        assert_eq!(
            flags,
            [Some(Flag::Suppressed), None, Some(Flag::Suppressed)]
        );
        assert_eq!(rows[0].value, None);
        assert_eq!(rows[0].n, None, "the count itself is withheld");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// No public value rests on fewer than `min_cell` observations, and no withheld cell
        /// can be recomputed from a total: along each dimension a group never has exactly
        /// one withheld cell.
        #[test]
        fn no_public_value_is_derivable_from_few_requests(
            counts in proptest::collection::vec(0u64..30, 1..40),
            width in 1usize..6,
            min_cell in 3u64..8,
        ) {
            let mut rows: Vec<KpiRow> = counts
                .iter()
                .enumerate()
                .map(|(i, n)| row(&[&format!("s{}", i % width), &format!("y{}", i / width)], *n))
                .collect();
            let original: Vec<u64> = counts.clone();
            suppress(&mut rows, 2, min_cell);
            for (r, n) in rows.iter().zip(&original) {
                if *n < min_cell {
                    prop_assert_eq!(r.flag, Some(Flag::Suppressed));
                }
                if r.flag != Some(Flag::Suppressed) {
                    prop_assert!(r.n.unwrap() >= min_cell);
                }
            }
            for d in 0..2 {
                let mut groups: BTreeMap<String, Vec<bool>> = BTreeMap::new();
                for r in &rows {
                    groups.entry(r.dims[1 - d].clone()).or_default().push(r.flag == Some(Flag::Suppressed));
                }
                for members in groups.values() {
                    let withheld = members.iter().filter(|h| **h).count();
                    prop_assert!(members.len() < 2 || withheld != 1, "{:?}", members);
                }
            }
        }
    }
}
