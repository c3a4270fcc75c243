//! The container manager on real processes and real cgroups (this host: cgroup v1, root).
//! These tests fail, not skip, when cgroups are unusable (except the `isolation: none` ones).

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use support::*;
use weft_common::protocol::{LocalResource, LocalResourceType};
use weft_common::states::{NmContainerState, exit_status};
use weft_common::token::{MasterKey, TokenError};
use weft_common::{NodeId, Resource};
use weft_nodemanager::NmError;
use weft_nodemanager::config::IsolationMode;

const HOG_300_MB: &str = "/usr/bin/python3 -c \"a = bytearray(300 * 1024 * 1024); import time; time.sleep(30)\"";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_container_has_cgroup_limits_and_stop_removes_everything() {
    let node = TestNode::new("limits", IsolationMode::CgroupV1);
    let id = container_id(1);
    let resource = Resource::new(256, 2);
    let token = node.token(id, resource);
    let report = node.manager.start_container(start_request(token.clone(), "echo hello; sleep 30")).await.unwrap();
    assert_eq!(report.state, NmContainerState::Running);
    assert_eq!(report.exit_status, exit_status::INVALID);
    let pid = report.pid.expect("a running container has a pid");

    let dirs = node.manager.cgroup_dirs(id).unwrap();
    let roots = expected_v1_roots("limits");
    assert_eq!(dirs, roots.iter().map(|root| root.join(id.to_string())).collect::<Vec<_>>());
    let [memory, cpu, pids] = &dirs[..] else { panic!("expected memory, cpu and pids cgroups: {dirs:?}") };
    assert_eq!(read_trimmed(&memory.join("memory.limit_in_bytes")), (256u64 * 1024 * 1024).to_string());
    assert_eq!(read_trimmed(&cpu.join("cpu.shares")), "2048");
    assert_eq!(read_trimmed(&cpu.join("cpu.cfs_quota_us")), "-1", "no hard quota unless configured");
    assert_eq!(read_trimmed(&pids.join("pids.max")), "64");
    for dir in &dirs {
        let procs = read_trimmed(&dir.join("cgroup.procs"));
        assert!(procs.lines().any(|p| p == pid.to_string()), "leader {pid} not in {}: {procs}", dir.display());
    }
    wait_until("stdout shows hello", Duration::from_secs(10), || node.log(id, "stdout") == "hello\n").await;
    assert_eq!(node.manager.allocated(), resource);

    let stopped = node.manager.stop_container(id, stop_request(token, None)).await.unwrap();
    assert_eq!(stopped.state, NmContainerState::Complete);
    assert_eq!(stopped.exit_status, exit_status::ABORTED);
    assert!(stopped.diagnostics.contains("stopped on request"), "{}", stopped.diagnostics);
    assert!(live_group_members(pid).is_empty(), "process group {pid} survived the stop");
    for dir in &dirs {
        assert!(!dir.exists(), "{} survived the stop", dir.display());
    }
    assert_eq!(node.manager.allocated(), Resource::ZERO);

    node.manager.shutdown().await.unwrap();
    for root in &roots {
        assert!(!root.exists(), "{} survived shutdown", root.display());
    }
}

#[test]
fn auto_mode_picks_cgroup_v1_on_this_host() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config("auto", dir.path(), IsolationMode::Auto);
    let isolation = weft_nodemanager::isolation::setup(&config.isolation).expect("this host offers cgroup v1");
    assert_eq!(isolation.mode(), IsolationMode::CgroupV1);
    assert_eq!(isolation.root_dirs(), expected_v1_roots("auto"));
    isolation.remove_all(true).unwrap();
    assert!(expected_v1_roots("auto").iter().all(|root| !root.exists()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hard_cpu_quota_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config("quota", dir.path(), IsolationMode::CgroupV1);
    config.isolation.cpu_hard_quota = true;
    let isolation = weft_nodemanager::isolation::setup(&config.isolation).unwrap();
    let cgroup = isolation.create("quota-probe", Resource::new(64, 3)).unwrap();
    let cpu = &cgroup.dirs()[1];
    assert_eq!(read_trimmed(&cpu.join("cpu.cfs_quota_us")), "300000");
    assert_eq!(read_trimmed(&cpu.join("cpu.cfs_period_us")), "100000");
    cgroup.remove().unwrap();
    isolation.remove_all(true).unwrap();
    assert!(!cpu.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_hog_is_killed_with_pmem_status() {
    let node = TestNode::new("hog", IsolationMode::CgroupV1);
    let id = container_id(1);
    let token = node.token(id, Resource::new(128, 1));
    node.manager.start_container(start_request(token, HOG_300_MB)).await.unwrap();
    let dirs = node.manager.cgroup_dirs(id).unwrap();

    let report = node.wait_complete(id, Duration::from_secs(30)).await;
    assert_eq!(report.exit_status, exit_status::KILLED_EXCEEDED_PMEM, "{report:?}");
    assert!(report.diagnostics.contains("is running beyond physical memory limits"), "{}", report.diagnostics);
    assert!(report.diagnostics.contains("MB of 128 MB physical memory used"), "{}", report.diagnostics);
    assert!(report.diagnostics.contains(&id.to_string()), "{}", report.diagnostics);
    for dir in &dirs {
        assert!(!dir.exists(), "{} survived the container", dir.display());
    }
    node.manager.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oom_kill_of_a_child_kills_the_whole_container() {
    let node = TestNode::new("oom-child", IsolationMode::CgroupV1);
    let id = container_id(1);
    let token = node.token(id, Resource::new(128, 1));
    // bash stays the leader and would carry on sleeping after its child is OOM-killed.
    let command = format!("{HOG_300_MB}; echo survived; sleep 30");
    let pid = node.manager.start_container(start_request(token, &command)).await.unwrap().pid.unwrap();

    let report = node.wait_complete(id, Duration::from_secs(30)).await;
    assert_eq!(report.exit_status, exit_status::KILLED_EXCEEDED_PMEM, "{report:?}");
    assert!(report.diagnostics.contains("OOM killer"), "{}", report.diagnostics);
    assert!(live_group_members(pid).is_empty());
    node.manager.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setsid_grandchild_ignoring_sigterm_does_not_survive_stop() {
    let node = TestNode::new("setsid", IsolationMode::CgroupV1);
    let id = container_id(1);
    let token = node.token(id, Resource::new(128, 1));
    let command = "setsid bash -c 'trap \"\" TERM; echo $$ > escaped.pid; exec sleep 1000' & trap '' TERM; sleep 1000";
    let leader = node.manager.start_container(start_request(token.clone(), command)).await.unwrap().pid.unwrap();
    let pid_file = node.manager.work_dir(id).unwrap().join("escaped.pid");
    wait_until("the grandchild wrote its pid", Duration::from_secs(10), || {
        std::fs::read_to_string(&pid_file).is_ok_and(|s| s.ends_with('\n'))
    })
    .await;
    let escaped: i32 = read_trimmed(&pid_file).parse().unwrap();
    assert!(pid_alive(escaped));
    assert!(!live_group_members(leader).contains(&escaped), "the grandchild should have left the process group");
    let dirs = node.manager.cgroup_dirs(id).unwrap();
    assert!(read_trimmed(&dirs[0].join("cgroup.procs")).lines().any(|p| p == escaped.to_string()));

    let report =
        node.manager.stop_container(id, stop_request(token, Some(exit_status::KILLED_BY_APPMASTER))).await.unwrap();
    assert_eq!(report.exit_status, exit_status::KILLED_BY_APPMASTER);
    assert!(!pid_alive(escaped), "the setsid grandchild survived the stop");
    assert!(!pid_alive(leader as i32));
    assert!(live_group_members(leader).is_empty());
    for dir in &dirs {
        assert!(!dir.exists(), "{} survived the stop", dir.display());
    }
    node.manager.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_code_logs_env_local_resources_and_substitutions() {
    let node = TestNode::new("env", IsolationMode::CgroupV1);
    let data = node.dir.path().join("data.txt");
    std::fs::write(&data, "resource content\n").unwrap();
    let id = container_id(1);
    let mut request = start_request(node.token(id, Resource::new(128, 1)), "");
    request.launch_context.commands = vec![
        "cat data.txt;".into(),
        "echo \"home={{HOME}}\";".into(),
        "env > <LOG_DIR>/env.txt;".into(),
        "echo oops >&2;".into(),
        "exit 3".into(),
    ];
    request.launch_context.environment = BTreeMap::from([("MY_VAR".to_owned(), "{{CONTAINER_ID}}-x".to_owned())]);
    request.launch_context.local_resources = BTreeMap::from([(
        "data.txt".to_owned(),
        LocalResource {
            resource: format!("file://{}", data.display()),
            kind: LocalResourceType::File,
            visibility: Default::default(),
        },
    )]);
    node.manager.start_container(request).await.unwrap();
    let report = node.wait_complete(id, Duration::from_secs(10)).await;
    assert_eq!(report.exit_status, 3, "{report:?}");

    let work_dir = node.manager.work_dir(id).unwrap();
    let log_dir = node.manager.log_dir(id);
    assert_eq!(work_dir, node.dir.path().join("work").join(APP.to_string()).join(id.to_string()));
    assert_eq!(log_dir, node.dir.path().join("logs").join(APP.to_string()).join(id.to_string()));
    assert_eq!(std::fs::read_link(work_dir.join("data.txt")).unwrap(), data);
    assert_eq!(node.log(id, "stdout"), format!("resource content\nhome={}\n", work_dir.display()));
    assert_eq!(node.log(id, "stderr"), "oops\n");
    assert_eq!(node.manager.log_files(id).unwrap(), vec!["env.txt", "stderr", "stdout"]);

    let env: BTreeMap<String, String> = node
        .log(id, "env.txt")
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect();
    let work = work_dir.display().to_string();
    let expected = [
        ("CONTAINER_ID", id.to_string()),
        ("NM_HOST", "127.0.0.1".into()),
        ("NM_PORT", "18042".into()),
        ("NM_HTTP_PORT", "18042".into()),
        ("LOG_DIRS", log_dir.display().to_string()),
        ("LOCAL_DIRS", work_dir.parent().unwrap().display().to_string()),
        ("USER", "alice".into()),
        ("PWD", work.clone()),
        ("HOME", work.clone()),
        ("MY_VAR", format!("{id}-x")),
    ];
    for (name, value) in expected {
        assert_eq!(env.get(name), Some(&value), "{name} in {env:?}");
    }
    assert!(env.contains_key("PATH"));
    assert!(!env.contains_key("CARGO_PKG_NAME"), "the NM's environment must not leak into containers");
    node.manager.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signal_exit_and_launch_failures() {
    let node = TestNode::new("exits", IsolationMode::CgroupV1);
    let killed = container_id(1);
    node.manager
        .start_container(start_request(node.token(killed, Resource::new(64, 1)), "kill -KILL $$"))
        .await
        .unwrap();
    assert_eq!(node.wait_complete(killed, Duration::from_secs(10)).await.exit_status, 128 + 9);

    let missing = container_id(2);
    let mut request = start_request(node.token(missing, Resource::new(64, 1)), "true");
    request.launch_context.local_resources = BTreeMap::from([(
        "job.jar".to_owned(),
        LocalResource {
            resource: "/nonexistent/job.jar".into(),
            kind: LocalResourceType::File,
            visibility: Default::default(),
        },
    )]);
    let err = node.manager.start_container(request).await.unwrap_err();
    assert!(matches!(err, NmError::LaunchFailed { .. }), "{err}");
    assert!(err.to_string().contains("`job.jar`") && err.to_string().contains("does not exist"), "{err}");
    let report = node.manager.report(missing).unwrap();
    assert_eq!((report.state, report.exit_status), (NmContainerState::Complete, exit_status::INVALID));
    assert!(report.diagnostics.contains("job.jar"));
    node.manager.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archives_are_unpacked_into_the_work_dir() {
    let node = TestNode::new("archive", IsolationMode::CgroupV1);
    let src = node.dir.path().join("src");
    std::fs::create_dir_all(src.join("conf")).unwrap();
    std::fs::write(src.join("conf/app.properties"), "answer=42\n").unwrap();
    let archive = node.dir.path().join("bundle.tar.gz");
    let tar =
        std::process::Command::new("tar").arg("-czf").arg(&archive).arg("-C").arg(&src).arg("conf").status().unwrap();
    assert!(tar.success());
    let id = container_id(1);
    let mut request = start_request(node.token(id, Resource::new(64, 1)), "cat bundle/conf/app.properties");
    request.launch_context.local_resources = BTreeMap::from([(
        "bundle".to_owned(),
        LocalResource {
            resource: archive.display().to_string(),
            kind: LocalResourceType::Archive,
            visibility: Default::default(),
        },
    )]);
    node.manager.start_container(request).await.unwrap();
    assert_eq!(node.wait_complete(id, Duration::from_secs(10)).await.exit_status, 0);
    assert_eq!(node.log(id, "stdout"), "answer=42\n");
    node.manager.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leftover_cgroups_of_a_crashed_nm_are_cleaned_at_start() {
    // What a crashed NM leaves behind: a container cgroup in every controller, a process inside.
    let leftovers: Vec<_> = expected_v1_roots("leftover").iter().map(|root| root.join("container_old")).collect();
    for dir in &leftovers {
        std::fs::create_dir_all(dir).unwrap();
    }
    let mut orphan = std::process::Command::new("sleep").arg("300").spawn().unwrap();
    for dir in &leftovers {
        std::fs::write(dir.join("cgroup.procs"), orphan.id().to_string()).unwrap();
    }

    let node = TestNode::new("leftover", IsolationMode::CgroupV1);
    let mut status = None;
    wait_until("the leftover process was killed", Duration::from_secs(5), || {
        status = orphan.try_wait().unwrap();
        status.is_some()
    })
    .await;
    assert_eq!(status.and_then(|s| std::os::unix::process::ExitStatusExt::signal(&s)), Some(9));
    for dir in &leftovers {
        assert!(!dir.exists(), "{} survived the start", dir.display());
        assert!(dir.parent().unwrap().is_dir(), "the cgroup root itself stays");
    }
    node.manager.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_checked_and_duplicates_refused() {
    let node = TestNode::new("tokens", IsolationMode::CgroupV1);
    let id = container_id(1);
    let resource = Resource::new(64, 1);
    let forged_key = MasterKey { key_id: node.key.key_id, ..MasterKey::generate(node.key.key_id) };
    let refused = [
        ("bad signature", token(&forged_key, &node.node_id, id, resource)),
        ("wrong node", token(&node.key, &NodeId("otherhost:18042".into()), id, resource)),
        ("expired", token_expiring(&node.key, &node.node_id, id, resource, now_ms() - 1)),
        ("garbage", "not-a-token".to_owned()),
    ];
    for (case, bad) in refused {
        let err = node.manager.start_container(start_request(bad, "true")).await.unwrap_err();
        let NmError::InvalidToken(reason) = &err else { panic!("{case}: {err}") };
        match case {
            "bad signature" => assert_eq!(*reason, TokenError::BadSignature),
            "wrong node" => assert!(matches!(reason, TokenError::WrongSubject { .. })),
            "expired" => assert!(matches!(reason, TokenError::Expired { .. })),
            _ => assert_eq!(*reason, TokenError::Malformed),
        }
    }
    assert!(node.manager.reports().is_empty(), "a refused token must start nothing");
    assert!(!node.dir.path().join("work").join(APP.to_string()).exists());

    let good = node.token(id, resource);
    node.manager.start_container(start_request(good.clone(), "sleep 30")).await.unwrap();
    let err = node.manager.start_container(start_request(good.clone(), "sleep 30")).await.unwrap_err();
    assert!(matches!(err, NmError::DuplicateContainer(dup) if dup == id), "{err}");
    let other = node.token(container_id(2), resource);
    let err = node.manager.stop_container(id, stop_request(other, None)).await.unwrap_err();
    assert!(matches!(err, NmError::TokenForOtherContainer { .. }), "{err}");
    assert_eq!(node.manager.report(id).unwrap().state, NmContainerState::Running);

    node.manager.set_token_keys(Vec::new());
    let err =
        node.manager.start_container(start_request(node.token(container_id(3), resource), "true")).await.unwrap_err();
    assert!(matches!(err, NmError::NotRegistered), "{err}");
    node.manager.shutdown().await.unwrap();
    assert_eq!(node.manager.report(id).unwrap().exit_status, exit_status::ABORTED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_isolation_still_enforces_memory_and_stops_groups() {
    let node = TestNode::new("none", IsolationMode::None);
    let hog = container_id(1);
    node.manager.start_container(start_request(node.token(hog, Resource::new(128, 1)), HOG_300_MB)).await.unwrap();
    assert!(node.manager.cgroup_dirs(hog).unwrap().is_empty());
    let report = node.wait_complete(hog, Duration::from_secs(30)).await;
    assert_eq!(report.exit_status, exit_status::KILLED_EXCEEDED_PMEM, "{report:?}");
    assert!(report.diagnostics.contains("of 128 MB physical memory used"), "{}", report.diagnostics);

    let sleeper = container_id(2);
    let token = node.token(sleeper, Resource::new(128, 1));
    let pid =
        node.manager.start_container(start_request(token.clone(), "sleep 30 & sleep 30")).await.unwrap().pid.unwrap();
    wait_until("both sleeps run", Duration::from_secs(10), || live_group_members(pid).len() >= 2).await;
    node.manager.stop_container(sleeper, stop_request(token, None)).await.unwrap();
    assert!(live_group_members(pid).is_empty());
    node.manager.shutdown().await.unwrap();
}

#[test]
fn log_names_cannot_escape_the_log_dir() {
    let node = TestNode::new("logpaths", IsolationMode::None);
    let id = container_id(1);
    let log_dir = node.manager.log_dir(id);
    std::fs::create_dir_all(&log_dir).unwrap();
    std::fs::write(log_dir.join("stdout"), "ok").unwrap();
    std::os::unix::fs::symlink("/etc/hostname", log_dir.join("sneaky")).unwrap();
    assert!(node.manager.open_log(id, "stdout").is_ok());
    for bad in ["../stdout", "..", "a/b", ""] {
        assert!(matches!(node.manager.open_log(id, bad), Err(NmError::BadRequest(_))), "{bad}");
    }
    assert!(matches!(node.manager.open_log(id, "sneaky"), Err(NmError::LogNotFound { .. })));
    assert_eq!(node.manager.log_files(id).unwrap(), vec!["stdout"], "symlinks are not listed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_beyond_the_cap_is_cut_and_the_container_runs_on() {
    const CAP: u64 = 64 * 1024;
    let node = TestNode::with_config("logcap", IsolationMode::CgroupV1, |config| config.containers.log_max_bytes = CAP);
    let id = container_id(1);
    // 400 kB on each stream, beyond the cap and any pipe buffer, written by the container's own
    // shell: if its output were no longer read it would block, and if the pipe were closed it
    // would die of SIGPIPE; either way it would never reach `touch`.
    let command = "for i in $(seq 100000); do echo out; done; for i in $(seq 100000); do echo err >&2; done; \
                   touch finished";
    node.manager.start_container(start_request(node.token(id, Resource::new(128, 1)), command)).await.unwrap();
    let report = node.wait_complete(id, Duration::from_secs(30)).await;
    assert_eq!(report.exit_status, 0, "{report:?}");
    assert!(node.manager.work_dir(id).unwrap().join("finished").exists(), "the container ran to its end");

    for (stream, line) in [("stdout", "out"), ("stderr", "err")] {
        let text = node.log(id, stream);
        assert!(text.len() as u64 <= CAP, "{stream} has {} bytes", text.len());
        let (head, last_line) = text.trim_end_matches('\n').rsplit_once('\n').unwrap();
        assert_eq!(
            last_line,
            format!(
                "[weft] {stream} truncated: containers.log-max-bytes ({CAP} bytes) reached; later output discarded"
            )
        );
        assert!(head.len() as u64 > CAP - 1024, "{stream} keeps nearly {CAP} bytes of output, not {}", head.len());
        // The head is the output as written (the last line of it may be cut short).
        assert!(head.lines().all(|l| line.starts_with(l) && !l.is_empty()), "{stream}: unexpected output");
    }
    node.manager.shutdown().await.unwrap();
}
