//! Applications bundled with Weft (distributed shell for now)
