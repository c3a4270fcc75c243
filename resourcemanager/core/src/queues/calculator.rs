//! How two resources (memory and vcores) are compared: the queue file's `resource-calculator`,
//! with the one `share()` every part of the scheduler, the REST views and the simulator use.

use serde::{Deserialize, Serialize};
use weft_common::Resource;

/// How resources are compared (YARN's `resource-calculator`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResourceCalculator {
    /// Dominant Resource Fairness over memory and vcores (Weft's default).
    #[default]
    Dominant,
    /// Memory only (YARN's `DefaultResourceCalculator`, the CS default; ignores CPU): vcores are
    /// never compared, owed or limited.
    Memory,
}

/// A resource dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dim {
    Memory,
    Vcores,
}

impl Dim {
    pub(crate) const ALL: [Dim; 2] = [Dim::Memory, Dim::Vcores];

    pub(crate) fn index(self) -> usize {
        match self {
            Dim::Memory => 0,
            Dim::Vcores => 1,
        }
    }

    pub(crate) fn of(self, r: Resource) -> u64 {
        match self {
            Dim::Memory => r.memory_mb,
            Dim::Vcores => u64::from(r.vcores),
        }
    }

    pub(crate) fn set(self, r: &mut Resource, value: u64) {
        match self {
            Dim::Memory => r.memory_mb = value,
            Dim::Vcores => r.vcores = u32::try_from(value).unwrap_or(u32::MAX),
        }
    }
}

/// Memory (MB) and vcores as floats, indexed by [`Dim::index`], for amounts between whole units.
pub(crate) type Amounts = [f64; 2];

pub(crate) fn amounts(r: Resource) -> Amounts {
    [r.memory_mb as f64, f64::from(r.vcores)]
}

impl ResourceCalculator {
    /// The dimensions that count.
    pub(crate) fn dims(self) -> &'static [Dim] {
        match self {
            ResourceCalculator::Dominant => &Dim::ALL,
            ResourceCalculator::Memory => &[Dim::Memory],
        }
    }

    /// `r` as one fraction of `total`: the largest share over the counted dimensions (the
    /// dominant share, or the memory share); a dimension `total` lacks counts as 0.
    pub fn share(self, r: Resource, total: Resource) -> f64 {
        self.share_of_amounts(amounts(r), total)
    }

    /// [`ResourceCalculator::share`] of fractional amounts.
    pub(crate) fn share_of_amounts(self, r: Amounts, total: Resource) -> f64 {
        self.dims()
            .iter()
            .map(|d| {
                let of = d.of(total);
                if of == 0 { 0.0 } else { r[d.index()] / of as f64 }
            })
            .fold(0.0, f64::max)
    }

    /// `used` fits within `limit` in every counted dimension.
    pub fn fits(self, used: Resource, limit: Resource) -> bool {
        self.dims().iter().all(|d| d.of(used) <= d.of(limit))
    }

    /// `r` with the dimensions that don't count zeroed.
    pub fn counted(self, r: Resource) -> Resource {
        let mut out = Resource::ZERO;
        for d in self.dims() {
            d.set(&mut out, d.of(r));
        }
        out
    }

    /// Nothing is left in a counted dimension.
    pub fn is_covered(self, owed: Resource) -> bool {
        self.dims().iter().all(|d| d.of(owed) == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_compare_the_counted_dimensions_only() {
        let cluster = Resource::new(1000, 10);
        let cpu_heavy = Resource::new(100, 5);
        assert_eq!(ResourceCalculator::Dominant.share(cpu_heavy, cluster), 0.5);
        assert_eq!(ResourceCalculator::Memory.share(cpu_heavy, cluster), 0.1);
        // A dimension the total lacks counts as nothing, never as a division by zero.
        assert_eq!(ResourceCalculator::Dominant.share(cpu_heavy, Resource::new(0, 10)), 0.5);
        assert_eq!(ResourceCalculator::Memory.share(cpu_heavy, Resource::new(0, 10)), 0.0);

        assert!(!ResourceCalculator::Dominant.fits(cpu_heavy, Resource::new(1000, 4)));
        assert!(ResourceCalculator::Memory.fits(cpu_heavy, Resource::new(1000, 4)));
        assert_eq!(ResourceCalculator::Memory.counted(cpu_heavy), Resource::new(100, 0));
        assert!(ResourceCalculator::Memory.is_covered(Resource::new(0, 3)));
        assert!(!ResourceCalculator::Dominant.is_covered(Resource::new(0, 3)));
    }
}
