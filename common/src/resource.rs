//! Multi-dimensional resources (memory and vcores).

use std::fmt;
use std::ops::{Add, AddAssign, Sub, SubAssign};

use serde::{Deserialize, Serialize};

/// An amount of memory (MiB) and virtual cores. Serializes in YARN's REST shape
/// `{"memory": 1024, "vCores": 1}`. The `Ord` is lexicographic (memory, then vcores) and only
/// serves as a map key; use [`Resource::fits`] to compare capacities.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Resource {
    #[serde(rename = "memory")]
    pub memory_mb: u64,
    #[serde(rename = "vCores")]
    pub vcores: u32,
}

impl Resource {
    pub const ZERO: Resource = Resource { memory_mb: 0, vcores: 0 };

    pub const fn new(memory_mb: u64, vcores: u32) -> Self {
        Self { memory_mb, vcores }
    }

    /// True if `other` fits inside `self` in every dimension.
    pub fn fits(&self, other: &Resource) -> bool {
        other.memory_mb <= self.memory_mb && other.vcores <= self.vcores
    }

    pub fn is_zero(&self) -> bool {
        self.memory_mb == 0 && self.vcores == 0
    }

    pub fn saturating_sub(self, o: Resource) -> Resource {
        Resource { memory_mb: self.memory_mb.saturating_sub(o.memory_mb), vcores: self.vcores.saturating_sub(o.vcores) }
    }

    /// The smaller amount in each dimension (`Ord::min` would compare memory first).
    pub fn min_each(self, o: Resource) -> Resource {
        Resource { memory_mb: self.memory_mb.min(o.memory_mb), vcores: self.vcores.min(o.vcores) }
    }

    /// The larger amount in each dimension.
    pub fn max_each(self, o: Resource) -> Resource {
        Resource { memory_mb: self.memory_mb.max(o.memory_mb), vcores: self.vcores.max(o.vcores) }
    }

    /// `self * n`, used for "n containers of this size".
    pub fn times(self, n: u64) -> Resource {
        Resource { memory_mb: self.memory_mb * n, vcores: self.vcores * n as u32 }
    }

    /// Rounds each dimension up to a multiple of `step` (YARN's minimum-allocation rounding).
    /// A zero dimension is raised to one step.
    pub fn round_up_to(self, step: Resource) -> Resource {
        fn up(v: u64, s: u64) -> u64 {
            if s == 0 { v } else { v.max(1).div_ceil(s) * s }
        }
        Resource {
            memory_mb: up(self.memory_mb, step.memory_mb),
            vcores: up(u64::from(self.vcores), u64::from(step.vcores)) as u32,
        }
    }
}

impl Add for Resource {
    type Output = Resource;
    fn add(self, o: Resource) -> Resource {
        Resource { memory_mb: self.memory_mb + o.memory_mb, vcores: self.vcores + o.vcores }
    }
}

impl AddAssign for Resource {
    fn add_assign(&mut self, o: Resource) {
        *self = *self + o;
    }
}

impl Sub for Resource {
    type Output = Resource;
    /// Panics in debug builds on underflow: subtracting more than was added is an accounting bug.
    fn sub(self, o: Resource) -> Resource {
        Resource { memory_mb: self.memory_mb - o.memory_mb, vcores: self.vcores - o.vcores }
    }
}

impl SubAssign for Resource {
    fn sub_assign(&mut self, o: Resource) {
        *self = *self - o;
    }
}

impl fmt::Display for Resource {
    /// YARN's `usedResources` string form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<memory:{}, vCores:{}>", self.memory_mb, self.vcores)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_and_fit() {
        let min = Resource::new(1024, 1);
        assert_eq!(Resource::new(1, 0).round_up_to(min), Resource::new(1024, 1));
        assert_eq!(Resource::new(1025, 3).round_up_to(min), Resource::new(2048, 3));
        assert!(Resource::new(2048, 2).fits(&Resource::new(2048, 1)));
        assert!(!Resource::new(2048, 2).fits(&Resource::new(1024, 3)));
        assert_eq!(Resource::new(512, 1).to_string(), "<memory:512, vCores:1>");
        assert_eq!(serde_json::to_string(&Resource::new(512, 1)).unwrap(), r#"{"memory":512,"vCores":1}"#);
    }
}
