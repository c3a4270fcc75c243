//! The workload generator: applications drawn per stream from the scenario's distributions.
//!
//! Every stream has its own random stream (derived from the seed and the stream's index), and an
//! app's contents are drawn when it is submitted, in the stream's submission order. So the apps
//! of one stream do not depend on other streams or on failures, and `--write-trace` captures
//! exactly what was submitted.

use weft_common::Resource;

use crate::rng::Rng;
use crate::scenario::{Arrival, Dist, GeneratorSpec, StreamSpec, expand_braces};
use crate::trace::{AppSpec, Durations, Stage};

pub struct Generator {
    streams: Vec<StreamState>,
}

struct StreamState {
    spec: StreamSpec,
    label: String,
    users: Vec<String>,
    rng: Rng,
    submitted: u64,
    end: u64,
    /// Arrival rate and closed-loop population multiplier (cluster size / scenario size).
    scale: f64,
}

impl Generator {
    /// `scale` multiplies arrival rates and closed-loop app counts when the scenario asks for it.
    pub fn new(spec: &GeneratorSpec, seed: u64, scale: f64, duration_ms: u64) -> Self {
        let scale = if spec.scale_with_cluster { scale } else { 1.0 };
        let streams = spec
            .streams
            .iter()
            .enumerate()
            .map(|(i, s)| StreamState {
                label: s.name.clone().unwrap_or_else(|| format!("stream{i}")),
                users: s.users.iter().flat_map(|u| expand_braces(u).unwrap_or_else(|_| vec![u.clone()])).collect(),
                rng: Rng::derive(seed, &format!("workload/{i}")),
                submitted: 0,
                end: s.end.map_or(duration_ms, |e| e.0),
                scale,
                spec: s.clone(),
            })
            .collect();
        Self { streams }
    }

    pub fn streams(&self) -> usize {
        self.streams.len()
    }

    /// Every stream's first submissions: (time, stream), one entry per app for bursts and
    /// closed loops.
    pub fn initial_arrivals(&mut self) -> Vec<(u64, u32)> {
        let mut out = Vec::new();
        for (i, s) in self.streams.iter_mut().enumerate() {
            let start = s.spec.start.0;
            match &s.spec.arrival {
                Arrival::Poisson(p) => {
                    let mean = 60_000.0 / (p.per_minute * s.scale);
                    out.push((start + s.rng.exponential(mean).round() as u64, i as u32));
                }
                Arrival::Every(_) => out.push((start, i as u32)),
                Arrival::Closed(c) => {
                    let n = scaled(c.apps, s.scale);
                    out.extend(std::iter::repeat_n((start, i as u32), n as usize));
                }
                Arrival::Burst(b) => {
                    let n = scaled(b.count, s.scale);
                    out.extend(std::iter::repeat_n((b.at.0, i as u32), n as usize));
                }
            }
        }
        out
    }

    /// Whether stream `stream` may submit at `now` (before its end and below its app cap).
    pub fn may_submit(&self, stream: u32, now: u64) -> bool {
        let s = &self.streams[stream as usize];
        now < s.end && s.spec.max_apps.is_none_or(|max| s.submitted < max)
    }

    /// Draws the next app of `stream`, submitted at `now`.
    pub fn draw(&mut self, stream: u32, now: u64) -> AppSpec {
        let s = &mut self.streams[stream as usize];
        s.submitted += 1;
        let user = s.users[s.rng.below(s.users.len() as u64) as usize].clone();
        let mut stages = Vec::with_capacity(s.spec.stages.len());
        for stage in &s.spec.stages {
            let count = (stage.count.sample(&mut s.rng).round() as u64).clamp(1, u64::from(u32::MAX)) as u32;
            let resource = match (&stage.size, stage.sizes.as_slice()) {
                (Some(size), _) => Resource::from(*size),
                (None, sizes) => {
                    let weights: Vec<f64> = sizes.iter().map(|c| c.weight).collect();
                    let c = &sizes[s.rng.weighted(&weights)];
                    Resource::new(c.memory_mb, c.vcores)
                }
            };
            let durations = match &stage.duration {
                _ if stage.long_running => Durations::LongRunning,
                Some(Dist::Fixed(d)) => Durations::Fixed(d.0),
                Some(dist) => {
                    Durations::PerTask((0..count).map(|_| (dist.sample(&mut s.rng).round() as u64).max(1)).collect())
                }
                None => Durations::LongRunning,
            };
            stages.push(Stage { count, resource, durations });
        }
        AppSpec {
            submit_ms: now,
            name: Some(format!("{}-{}", s.label, s.submitted)),
            queue: s.spec.queue.clone(),
            user,
            priority: s.spec.priority,
            am: s.spec.am.into(),
            stages,
        }
    }

    /// When an open stream (Poisson, periodic) submits next after submitting at `now`.
    pub fn next_arrival(&mut self, stream: u32, now: u64) -> Option<u64> {
        let s = &mut self.streams[stream as usize];
        let next = match &s.spec.arrival {
            Arrival::Poisson(p) => now + s.rng.exponential(60_000.0 / (p.per_minute * s.scale)).round() as u64,
            Arrival::Every(d) => now + ((d.0 as f64 / s.scale).round() as u64).max(1),
            Arrival::Closed(_) | Arrival::Burst(_) => return None,
        };
        Some(next)
    }

    /// When a closed-loop stream submits the replacement of an app that ended at `now`
    /// (`refused`: it was rejected, so wait at least a second rather than spin).
    pub fn replacement(&self, stream: u32, now: u64, refused: bool) -> Option<u64> {
        let s = &self.streams[stream as usize];
        match &s.spec.arrival {
            Arrival::Closed(c) => Some(now + if refused { c.think.0.max(1000) } else { c.think.0 }),
            _ => None,
        }
    }
}

fn scaled(n: u64, scale: f64) -> u64 {
    ((n as f64 * scale).round() as u64).max(1)
}
