//! `weft up --ha`: the one-machine demo of two ResourceManagers on a throwaway PostgreSQL.

use std::process::{Command, Stdio};
use std::time::Duration;

use weft_tests::{read_tail, wait_for, weft_bin};

/// A port p such that p and p + 1 are both free on loopback now.
fn two_free_ports() -> u16 {
    for _ in 0..50 {
        let first = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = first.local_addr().unwrap().port();
        if port < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
    panic!("no two adjacent free ports");
}

#[test]
fn weft_up_ha_runs_two_rms_on_a_local_postgresql() {
    let dir = tempfile::tempdir().unwrap();
    let port = two_free_ports();
    let log = dir.path().join("up.log");
    let out = std::fs::File::create(&log).unwrap();
    let mut up = Command::new(weft_bin())
        .args(["up", "--ha", "--nodes", "1", "--isolation", "none", "--port", &port.to_string(), "--data-dir"])
        .arg(dir.path().join("data"))
        .env("WEFT_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let rms = format!("http://127.0.0.1:{port},http://127.0.0.1:{}", port + 1);
    let weft = |args: &[&str]| {
        Command::new(weft_bin()).args(args).env("WEFT_RM", &rms).env("WEFT_LOG", "warn").output().unwrap()
    };
    let states = wait_for("one active and one standby RM", Duration::from_secs(60), || {
        if let Ok(Some(status)) = up.try_wait() {
            panic!("weft up exited ({status}):\n{}", read_tail(&log));
        }
        let text = String::from_utf8_lossy(&weft(&["rmadmin", "get-state"]).stdout).into_owned();
        (text.matches("ACTIVE").count() == 1 && text.matches("STANDBY").count() == 1).then_some(text)
    })
    .unwrap();
    assert!(states.contains(&format!("127.0.0.1:{port}")), "{states}");

    let run = weft(&["dshell", "--containers", "2", "--", "echo", "hello"]);
    assert!(run.status.success(), "{}\n{}", String::from_utf8_lossy(&run.stdout), read_tail(&log));

    // SAFETY: plain kill(2) on a pid we spawned.
    unsafe { libc::kill(up.id() as i32, libc::SIGTERM) };
    let status = wait_for("weft up to stop", Duration::from_secs(30), || up.try_wait().ok().flatten()).unwrap();
    assert!(status.success(), "weft up exited with {status}:\n{}", read_tail(&log));
}
