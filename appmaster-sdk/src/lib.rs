//! Rust SDK for Weft clients and ApplicationMasters
