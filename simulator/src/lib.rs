//! Deterministic cluster simulator (work in progress).
