//! Steady fair shares, as YARN's `ComputeFairShares` computes them.
//!
//! Find a weight-to-resource ratio `R` such that the shares
//! `share_i = min(max(weight_i · R, min_i), max_i)` add up to the total (capped at the sum of
//! the maxima). `R` is bracketed by doubling from 1 and then found by 25 steps of binary search.
//! Shares are truncated to whole units, so a few units may stay unassigned; unlike YARN, the
//! shares never add up to more than the total (see the end of `shares_in_dimension`).
//! Schedulables with a weight ≤ 0 (or a maximum of 0) don't take part in the search: they get
//! their minimum share (or nothing), which is taken out of the total first. Each resource
//! dimension is computed independently.

use weft_common::Resource;

/// Binary-search steps, as YARN's `COMPUTE_FAIR_SHARES_ITERATIONS`.
const ITERATIONS: usize = 25;

/// One queue (or app) competing for a share.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedulable {
    pub weight: f64,
    pub min_share: Resource,
    pub max_share: Resource,
}

/// The fair share of each schedulable out of `total`, in input order.
pub fn compute_fair_shares(total: Resource, schedulables: &[Schedulable]) -> Vec<Resource> {
    let memory: Vec<(f64, u64, u64)> =
        schedulables.iter().map(|s| (s.weight, s.min_share.memory_mb, s.max_share.memory_mb)).collect();
    let vcores: Vec<(f64, u64, u64)> =
        schedulables.iter().map(|s| (s.weight, u64::from(s.min_share.vcores), u64::from(s.max_share.vcores))).collect();
    let memory_shares = shares_in_dimension(total.memory_mb, &memory);
    let vcore_shares = shares_in_dimension(u64::from(total.vcores), &vcores);
    memory_shares
        .into_iter()
        .zip(vcore_shares)
        .map(|(memory, vcores)| Resource::new(memory, u32::try_from(vcores).unwrap_or(u32::MAX)))
        .collect()
}

/// `(weight, min, max)` per schedulable → share, in one dimension.
fn shares_in_dimension(total: u64, items: &[(f64, u64, u64)]) -> Vec<u64> {
    let mut shares = vec![0; items.len()];
    let mut taken: u64 = 0;
    let mut searched = Vec::new();
    for (i, &(weight, min, max)) in items.iter().enumerate() {
        if max == 0 {
            shares[i] = 0;
        } else if weight > 0.0 {
            searched.push(i);
        } else {
            // Weight ≤ 0, or NaN (which would never let the search converge).
            shares[i] = min.min(max);
            taken = taken.saturating_add(shares[i]);
        }
    }
    if searched.is_empty() {
        return shares;
    }
    let sum_of_max = searched.iter().fold(0u64, |sum, &i| sum.saturating_add(items[i].2));
    let target = sum_of_max.min(total.saturating_sub(taken));
    let used_at = |ratio: f64| searched.iter().fold(0u64, |sum, &i| sum.saturating_add(share_at(items[i], ratio)));

    // Every share reaches its maximum as the ratio grows (at worst when it overflows to
    // infinity), and the maxima add up to at least the target, so this ends.
    let mut upper = 1.0;
    while used_at(upper) < target && upper.is_finite() {
        upper *= 2.0;
    }
    let mut lower = 0.0;
    for _ in 0..ITERATIONS {
        let mid = (lower + upper) / 2.0;
        let used = used_at(mid);
        if used == target {
            upper = mid;
            break;
        } else if used < target {
            lower = mid;
        } else {
            upper = mid;
        }
    }
    // Truncation can make the sum at `upper` overshoot the target (YARN hands that out: three
    // equal weights share 100 as 34 + 34 + 34); Weft never guarantees more than the total, so it
    // then takes `lower`, whose sum stays below (33 + 33 + 33).
    let ratio = if used_at(upper) <= target { upper } else { lower };
    for &i in &searched {
        shares[i] = share_at(items[i], ratio);
    }
    shares
}

/// `min(max(weight · ratio, min), max)`, truncated like YARN's cast to long.
fn share_at((weight, min, max): (f64, u64, u64), ratio: f64) -> u64 {
    (weight * ratio).max(min as f64).min(max as f64) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unbounded(weight: f64) -> Schedulable {
        Schedulable { weight, min_share: Resource::ZERO, max_share: Resource::new(u64::MAX / 4, u32::MAX) }
    }

    #[test]
    fn weights_split_the_total() {
        let shares = compute_fair_shares(Resource::new(100, 40), &[unbounded(1.0), unbounded(1.0), unbounded(2.0)]);
        assert_eq!(shares, [Resource::new(25, 10), Resource::new(25, 10), Resource::new(50, 20)]);
        let shares =
            compute_fair_shares(Resource::new(102_400, 100), &[unbounded(1.0), unbounded(1.0), unbounded(2.0)]);
        assert_eq!(shares, [Resource::new(25_600, 25), Resource::new(25_600, 25), Resource::new(51_200, 50)]);
    }

    #[test]
    fn truncation_never_hands_out_more_than_the_total() {
        let shares = compute_fair_shares(Resource::new(100, 10), &[unbounded(1.0), unbounded(1.0), unbounded(1.0)]);
        assert_eq!(shares, [Resource::new(33, 3); 3]);
    }

    #[test]
    fn minimum_shares_are_honoured() {
        let with_min = Schedulable { min_share: Resource::new(60, 6), ..unbounded(1.0) };
        let shares = compute_fair_shares(Resource::new(100, 10), &[with_min, unbounded(1.0)]);
        assert_eq!(shares, [Resource::new(60, 6), Resource::new(40, 4)]);
    }

    #[test]
    fn maximum_shares_cap_and_the_rest_goes_to_others() {
        let capped = Schedulable { max_share: Resource::new(10, 1), ..unbounded(1.0) };
        let shares = compute_fair_shares(Resource::new(90, 9), &[capped, unbounded(1.0), unbounded(1.0)]);
        assert_eq!(shares, [Resource::new(10, 1), Resource::new(40, 4), Resource::new(40, 4)]);
        // Total above the sum of maxima: everyone gets their maximum.
        let small = Schedulable { max_share: Resource::new(5, 1), ..unbounded(3.0) };
        assert_eq!(compute_fair_shares(Resource::new(100, 10), &[small, small]), [Resource::new(5, 1); 2]);
    }

    #[test]
    fn zero_weights_get_their_minimum_only() {
        let zero = |min| Schedulable { weight: 0.0, min_share: Resource::new(min, 0), ..unbounded(0.0) };
        assert_eq!(compute_fair_shares(Resource::new(100, 10), &[zero(0), zero(0)]), [Resource::ZERO; 2]);
        assert_eq!(
            compute_fair_shares(Resource::new(100, 10), &[zero(30), unbounded(1.0)]),
            [Resource::new(30, 0), Resource::new(70, 10)]
        );
        let nan = Schedulable { weight: f64::NAN, ..unbounded(1.0) };
        assert_eq!(
            compute_fair_shares(Resource::new(100, 10), &[nan, unbounded(1.0)]),
            [Resource::ZERO, Resource::new(100, 10)]
        );
    }

    #[test]
    fn empty_cluster_and_no_schedulables() {
        assert_eq!(compute_fair_shares(Resource::ZERO, &[unbounded(1.0), unbounded(2.0)]), [Resource::ZERO; 2]);
        assert!(compute_fair_shares(Resource::new(10, 1), &[]).is_empty());
    }
}
