//! Fair shares, as YARN's `ComputeFairShares` defines them, solved exactly: the steady shares of
//! the queue tree (`resolve.rs`), the instantaneous shares of active queues
//! (`Hierarchy::instantaneous_fair_shares`) and the apps' shares within a leaf (fair preemption).
//!
//! Find the weight-to-resource ratio `R` at which the shares
//! `share_i = min(max(weight_i · R, min_i), max_i)` add up to the total, or to what the
//! schedulables can take if that is less. The sum is piecewise linear in `R` and only bends where
//! a schedulable leaves its minimum or reaches its maximum, so `R` is found between two bends and
//! solved for directly, where YARN doubles `R` from 1 and then runs 25 bisection steps.
//!
//! Shares are whole units (MB, vcores): rounded down, and the units lost to rounding go to the
//! largest fractions (ties: the earlier schedulable), so the shares add up to exactly min(total,
//! what the schedulables can take) — never more than the total (YARN's truncation of a
//! bisected ratio can hand out more), and nothing left over that someone could take. If the
//! minimums alone exceed the total, everyone gets their minimum (as in YARN). A weight ≤ 0, or
//! not a finite number, pins a schedulable at its minimum. Each dimension is solved on its own
//! (YARN's `drf` policy does the same); every dimension is computed, and callers that compare by
//! memory only drop the vcores with [`ResourceCalculator::counted`](super::ResourceCalculator).

use weft_common::Resource;

use super::calculator::Dim;

/// Below this, a fractional share counts as a whole unit: binary noise such as 33.999999….
const EPSILON: f64 = 1e-6;

/// One queue (or app) competing for a share.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedulable {
    pub weight: f64,
    pub min_share: Resource,
    /// The most it can take: its maximum, and for instantaneous shares also its demand.
    pub max_share: Resource,
}

/// The fair share of each schedulable out of `total`, in input order.
pub fn compute_fair_shares(total: Resource, schedulables: &[Schedulable]) -> Vec<Resource> {
    let mut shares = vec![Resource::ZERO; schedulables.len()];
    for d in Dim::ALL {
        let specs: Vec<(f64, u64, u64)> =
            schedulables.iter().map(|s| (s.weight, d.of(s.min_share), d.of(s.max_share))).collect();
        for (share, value) in shares.iter_mut().zip(shares_in_dimension(d.of(total), &specs)) {
            d.set(share, value);
        }
    }
    shares
}

/// [`compute_fair_shares`] in one dimension; `specs` are `(weight, min, max)`.
fn shares_in_dimension(total: u64, specs: &[(f64, u64, u64)]) -> Vec<u64> {
    let spec: Vec<(f64, f64, f64)> = specs
        .iter()
        .map(|&(w, min, max)| {
            let weight = if w.is_finite() && w > 0.0 { w } else { 0.0 };
            (weight, min.min(max) as f64, max as f64)
        })
        .collect();
    let sum_at = |ratio: f64| -> f64 { spec.iter().map(|&(w, lo, hi)| (w * ratio).clamp(lo, hi)).sum() };
    let reachable: f64 = spec.iter().map(|&(w, lo, hi)| if w > 0.0 { hi } else { lo }).sum();
    let target = (total as f64).min(reachable);

    let mut ratio = 0.0;
    if sum_at(0.0) < target {
        let mut bends: Vec<f64> = spec.iter().filter(|s| s.0 > 0.0).flat_map(|&(w, lo, hi)| [lo / w, hi / w]).collect();
        bends.sort_by(f64::total_cmp);
        bends.dedup();
        // The sum never falls as the ratio grows: the first bend that reaches the target ends
        // the linear piece the ratio lies on.
        let at = bends.partition_point(|&bend| sum_at(bend) < target);
        ratio = match bends.get(at) {
            None => bends.last().copied().unwrap_or(0.0),
            Some(&bend) => {
                let prev = if at == 0 { 0.0 } else { bends[at - 1] };
                let (sum_prev, sum) = (sum_at(prev), sum_at(bend));
                if sum > sum_prev { prev + (target - sum_prev) * (bend - prev) / (sum - sum_prev) } else { bend }
            }
        };
    }

    let exact: Vec<f64> = spec.iter().map(|&(w, lo, hi)| (w * ratio).clamp(lo, hi)).collect();
    let mut shares: Vec<u64> =
        exact.iter().zip(specs).map(|(x, &(_, _, max))| ((x + EPSILON).floor() as u64).min(max)).collect();
    let missing = ((target + EPSILON).floor() as u64).saturating_sub(shares.iter().sum());
    let mut by_fraction: Vec<usize> = (0..shares.len()).filter(|&i| shares[i] < specs[i].2).collect();
    by_fraction
        .sort_by(|&a, &b| (exact[b] - exact[b].floor()).total_cmp(&(exact[a] - exact[a].floor())).then(a.cmp(&b)));
    for &i in by_fraction.iter().take(usize::try_from(missing).unwrap_or(usize::MAX)) {
        shares[i] += 1;
    }
    shares
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One unit is 1 GiB and 1 vcore, so both dimensions move together unless a test says otherwise.
    fn units(n: u64) -> Resource {
        Resource::new(1024 * n, n as u32)
    }

    fn with(weight: f64, min_share: Resource, max_share: Resource) -> Schedulable {
        Schedulable { weight, min_share, max_share }
    }

    fn unbounded(weight: f64) -> Schedulable {
        with(weight, Resource::ZERO, Resource::new(u64::MAX / 4, u32::MAX))
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
    fn units_lost_to_rounding_go_to_the_largest_fractions() {
        // Thirds: the exact shares add up to the total; the spare unit goes to the first of the
        // equal fractions (YARN's truncation gives 34 each; bisecting and truncating, 33 each).
        let shares = compute_fair_shares(Resource::new(100, 10), &[unbounded(1.0), unbounded(1.0), unbounded(1.0)]);
        assert_eq!(shares, [Resource::new(34, 4), Resource::new(33, 3), Resource::new(33, 3)]);
        // Weights 3:2:1 of 102400 MB: 51200, 34133.3 and 17066.7, so the spare MB goes to the last.
        let shares =
            compute_fair_shares(Resource::new(102_400, 100), &[unbounded(3.0), unbounded(2.0), unbounded(1.0)]);
        assert_eq!(shares, [Resource::new(51_200, 50), Resource::new(34_133, 33), Resource::new(17_067, 17)]);
    }

    #[test]
    fn minimum_shares_are_honoured() {
        let with_min = with(1.0, Resource::new(60, 6), unbounded(1.0).max_share);
        let shares = compute_fair_shares(Resource::new(100, 10), &[with_min, unbounded(1.0)]);
        assert_eq!(shares, [Resource::new(60, 6), Resource::new(40, 4)]);
        // Oversubscribed minimums: everyone gets their minimum.
        let seventy = with(1.0, units(70), units(1_000));
        assert_eq!(compute_fair_shares(units(100), &[seventy, seventy]), [units(70), units(70)]);
    }

    #[test]
    fn maximum_shares_cap_and_the_rest_goes_to_others() {
        let capped = with(1.0, Resource::ZERO, Resource::new(10, 1));
        let shares = compute_fair_shares(Resource::new(90, 9), &[capped, unbounded(1.0), unbounded(1.0)]);
        assert_eq!(shares, [Resource::new(10, 1), Resource::new(40, 4), Resource::new(40, 4)]);
        // Total above the sum of maxima: everyone gets their maximum, the rest stays unassigned.
        let small = with(3.0, Resource::ZERO, Resource::new(5, 1));
        assert_eq!(compute_fair_shares(Resource::new(100, 10), &[small, small]), [Resource::new(5, 1); 2]);
        // Instantaneous shares pass max = min(maximum, demand): b wants 5, a and c split 95.
        let shares = compute_fair_shares(
            Resource::new(100, 100),
            &[unbounded(1.0), with(1.0, Resource::ZERO, Resource::new(5, 5)), unbounded(1.0)],
        );
        assert_eq!(shares, [Resource::new(48, 48), Resource::new(5, 5), Resource::new(47, 47)]);
        // A minimum above the maximum is capped by it.
        let shares =
            compute_fair_shares(units(100), &[with(1.0, units(30), units(20)), with(2.0, units(0), units(10))]);
        assert_eq!(shares, [units(20), units(10)]);
        // Per dimension: the cap only binds vcores.
        let shares = compute_fair_shares(
            Resource::new(100, 100),
            &[with(1.0, Resource::ZERO, Resource::new(1_000, 10)), unbounded(1.0)],
        );
        assert_eq!(shares, [Resource::new(50, 10), Resource::new(50, 90)]);
    }

    #[test]
    fn zero_and_invalid_weights_get_their_minimum_only() {
        let zero = |min| with(0.0, Resource::new(min, 0), unbounded(0.0).max_share);
        assert_eq!(compute_fair_shares(Resource::new(100, 10), &[zero(0), zero(0)]), [Resource::ZERO; 2]);
        assert_eq!(
            compute_fair_shares(Resource::new(100, 10), &[zero(30), unbounded(1.0)]),
            [Resource::new(30, 0), Resource::new(70, 10)]
        );
        let big = units(1_000);
        assert_eq!(
            compute_fair_shares(
                units(100),
                &[with(f64::NAN, units(5), big), with(-2.0, units(0), big), with(f64::INFINITY, units(0), big)]
            ),
            [units(5), units(0), units(0)]
        );
        let nan = with(f64::NAN, Resource::ZERO, big);
        assert_eq!(compute_fair_shares(units(10), &[nan, unbounded(1.0)]), [Resource::ZERO, units(10)]);
    }

    #[test]
    fn empty_cluster_and_no_schedulables() {
        assert_eq!(compute_fair_shares(Resource::ZERO, &[unbounded(1.0), unbounded(2.0)]), [Resource::ZERO; 2]);
        assert!(compute_fair_shares(Resource::new(10, 1), &[]).is_empty());
    }
}
