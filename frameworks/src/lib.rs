//! Applications bundled with Weft (distributed shell for now).

pub mod dshell;
