//! YARN-format identifiers as typed values. They serialize as their YARN string form so REST
//! bodies and stored rows read like YARN's.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} id {input:?}: expected {expected}")]
pub struct IdParseError {
    pub kind: &'static str,
    pub input: String,
    pub expected: &'static str,
}

impl IdParseError {
    fn new(kind: &'static str, input: &str, expected: &'static str) -> Self {
        Self { kind, input: input.to_owned(), expected }
    }
}

/// `application_<clusterTimestamp>_<sequence>`, e.g. `application_1700000000000_0001`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ApplicationId {
    pub cluster_ts: u64,
    pub seq: u32,
}

/// `appattempt_<clusterTimestamp>_<appSequence>_<attempt>` (attempt padded to 6 digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttemptId {
    pub app: ApplicationId,
    pub attempt: u32,
}

/// `container_[e<epoch>_]<clusterTimestamp>_<appSequence>_<attempt>_<sequence>`.
///
/// The epoch is the RM state-store epoch, bumped on every RM restart or failover, so ids stay
/// unique across RM incarnations (YARN prints the `e` prefix only when the epoch is non-zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContainerId {
    pub attempt: AttemptId,
    pub epoch: u32,
    pub seq: u64,
}

/// `host:port` of a NodeManager's HTTP endpoint. Shared, not copied: the RM stores a node's id
/// with every container, index entry and token it issues for that node.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub Arc<str>);

impl ApplicationId {
    pub fn new(cluster_ts: u64, seq: u32) -> Self {
        Self { cluster_ts, seq }
    }
}

impl AttemptId {
    pub fn new(app: ApplicationId, attempt: u32) -> Self {
        Self { app, attempt }
    }
}

impl ContainerId {
    pub fn app(&self) -> ApplicationId {
        self.attempt.app
    }
}

impl NodeId {
    pub fn host(&self) -> &str {
        self.0.rsplit_once(':').map_or(&self.0, |(h, _)| h)
    }
}

impl fmt::Display for ApplicationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "application_{}_{:04}", self.cluster_ts, self.seq)
    }
}

impl fmt::Display for AttemptId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "appattempt_{}_{:04}_{:06}", self.app.cluster_ts, self.app.seq, self.attempt)
    }
}

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("container_")?;
        if self.epoch > 0 {
            write!(f, "e{}_", self.epoch)?;
        }
        let a = &self.attempt;
        write!(f, "{}_{:04}_{:02}_{:06}", a.app.cluster_ts, a.app.seq, a.attempt, self.seq)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn num<T: FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl FromStr for ApplicationId {
    type Err = IdParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || IdParseError::new("application", s, "application_<clusterTimestamp>_<sequence>");
        let rest = s.strip_prefix("application_").ok_or_else(err)?;
        let (ts, seq) = rest.split_once('_').ok_or_else(err)?;
        Ok(Self { cluster_ts: num(ts).ok_or_else(err)?, seq: num(seq).ok_or_else(err)? })
    }
}

impl FromStr for AttemptId {
    type Err = IdParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || IdParseError::new("attempt", s, "appattempt_<clusterTimestamp>_<appSequence>_<attempt>");
        let rest = s.strip_prefix("appattempt_").ok_or_else(err)?;
        let parts: Vec<&str> = rest.split('_').collect();
        let [ts, seq, attempt] = parts[..] else { return Err(err()) };
        Ok(Self {
            app: ApplicationId { cluster_ts: num(ts).ok_or_else(err)?, seq: num(seq).ok_or_else(err)? },
            attempt: num(attempt).ok_or_else(err)?,
        })
    }
}

impl FromStr for ContainerId {
    type Err = IdParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || {
            IdParseError::new(
                "container",
                s,
                "container_[e<epoch>_]<clusterTimestamp>_<appSequence>_<attempt>_<sequence>",
            )
        };
        let rest = s.strip_prefix("container_").ok_or_else(err)?;
        let mut parts: Vec<&str> = rest.split('_').collect();
        let mut epoch = 0;
        if let Some(e) = parts.first().and_then(|p| p.strip_prefix('e')) {
            epoch = num(e).ok_or_else(err)?;
            parts.remove(0);
        }
        let [ts, app_seq, attempt, seq] = parts[..] else { return Err(err()) };
        Ok(Self {
            attempt: AttemptId {
                app: ApplicationId { cluster_ts: num(ts).ok_or_else(err)?, seq: num(app_seq).ok_or_else(err)? },
                attempt: num(attempt).ok_or_else(err)?,
            },
            epoch,
            seq: num(seq).ok_or_else(err)?,
        })
    }
}

impl FromStr for NodeId {
    type Err = IdParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || IdParseError::new("node", s, "<host>:<port>");
        let (host, port) = s.rsplit_once(':').ok_or_else(err)?;
        if host.is_empty() || num::<u16>(port).is_none() {
            return Err(err());
        }
        Ok(Self(s.into()))
    }
}

macro_rules! string_serde {
    ($($t:ty),*) => {$(
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    )*};
}
string_serde!(ApplicationId, AttemptId, ContainerId, NodeId);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn yarn_formats() {
        let app = ApplicationId::new(1404198295326, 3);
        assert_eq!(app.to_string(), "application_1404198295326_0003");
        let att = AttemptId::new(app, 1);
        assert_eq!(att.to_string(), "appattempt_1404198295326_0003_000001");
        let c = ContainerId { attempt: att, epoch: 0, seq: 7 };
        assert_eq!(c.to_string(), "container_1404198295326_0003_01_000007");
        let e = ContainerId { epoch: 2, ..c };
        assert_eq!(e.to_string(), "container_e2_1404198295326_0003_01_000007");
        assert_eq!("container_e2_1404198295326_0003_01_000007".parse::<ContainerId>().unwrap(), e);
        assert_eq!("application_1_12345".parse::<ApplicationId>().unwrap().seq, 12345);
    }

    #[test]
    fn rejects_malformed() {
        for bad in ["", "application_", "application_x_1", "application_1_", "app_1_2", "application_1_2_3"] {
            assert!(bad.parse::<ApplicationId>().is_err(), "{bad}");
        }
        assert!("container_1_2_3".parse::<ContainerId>().is_err());
        assert!("host".parse::<NodeId>().is_err());
        assert!("host:99999".parse::<NodeId>().is_err());
        assert_eq!("h:1".parse::<NodeId>().unwrap().host(), "h");
    }

    proptest! {
        #[test]
        fn container_id_roundtrips(ts in 0u64..u64::MAX, app in 0u32..u32::MAX, att in 0u32..1000, epoch in 0u32..100, seq in 0u64..u64::MAX) {
            let id = ContainerId { attempt: AttemptId::new(ApplicationId::new(ts, app), att), epoch, seq };
            prop_assert_eq!(id.to_string().parse::<ContainerId>().unwrap(), id);
        }
    }
}
