//! End-to-end tests that spawn real weft processes
