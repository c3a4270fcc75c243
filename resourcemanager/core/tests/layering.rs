//! The core stays sans-IO because Cargo says so, not by convention: none of the crates that do
//! IO (async runtimes, HTTP, databases) may be among its normal dependencies, direct or not.

use std::process::Command;

const FORBIDDEN: &[&str] = &["tokio", "axum", "hyper", "reqwest", "sqlx", "tower", "mio", "libsqlite3-sys"];

#[test]
fn the_core_depends_on_no_io_crate() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "tree",
            "--offline",
            "--locked",
            "-p",
            "weft-rm-core",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(output.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&output.stderr));
    let tree = String::from_utf8(output.stdout).unwrap();
    let packages: Vec<&str> = tree.lines().filter_map(|line| line.split_whitespace().next()).collect();
    assert!(packages.contains(&"weft-common"), "unexpected cargo tree output:\n{tree}");
    let found: Vec<&&str> = FORBIDDEN.iter().filter(|name| packages.contains(name)).collect();
    assert!(found.is_empty(), "weft-rm-core depends on {found:?}; the core must not do IO:\n{tree}");
}
