//! The Weft NodeManager: container launch in cgroups, monitoring, logs, RM heartbeats
