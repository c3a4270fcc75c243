//! End-to-end: a real RM and two real NMs (separate `weft` processes on loopback), real
//! containers in real cgroups. Each test ends with `assert_all_alive`.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use weft_tests::{Cluster, ClusterOptions, http, http_json, http_with_timeout, wait_for, weft_bin};

const MINUTE: Duration = Duration::from_secs(60);

fn cluster() -> Cluster {
    Cluster::start(ClusterOptions::default()).expect("cluster starts")
}

/// The first `application_…` id in a text.
fn app_id_in(text: &str) -> Option<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .find(|w| w.starts_with("application_") && w.matches('_').count() == 2)
        .map(str::to_owned)
}

/// Starts `weft dshell` in the background (it blocks until the app ends) and returns it with the
/// app id it printed.
fn dshell_background(c: &Cluster, args: &[&str]) -> (Child, String) {
    let out = c.path().join(format!("dshell-{}.out", args.len() + c.path().read_dir().map_or(0, |d| d.count())));
    let file = std::fs::File::create(&out).expect("dshell output file");
    let child = Command::new(weft_bin())
        .arg("dshell")
        .args(args)
        .env("WEFT_RM", c.rm_url())
        .env("USER", "tester")
        .env("WEFT_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(file.try_clone().expect("dup"))
        .stderr(file)
        .spawn()
        .expect("spawn weft dshell");
    let id = wait_for("dshell to print its app id", MINUTE, || app_id_in(&std::fs::read_to_string(&out).ok()?))
        .expect("app id");
    (child, id)
}

fn containers_of(c: &Cluster, app: &Value) -> Vec<Value> {
    let id = app["id"].as_str().expect("id");
    let attempts = c.get(&format!("/ws/v1/cluster/apps/{id}/appattempts")).expect("attempts");
    let mut all = Vec::new();
    for a in attempts["appAttempts"]["appAttempt"].as_array().expect("array") {
        let attempt = a["appAttemptId"].as_str().expect("attempt id");
        let cs = c.get(&format!("/ws/v1/cluster/apps/{id}/appattempts/{attempt}/containers")).expect("containers");
        all.extend(cs["containers"]["container"].as_array().cloned().unwrap_or_default());
    }
    all
}

/// Running containers an NM reports, excluding AM containers (sequence 000001 of an attempt is
/// not guaranteed to be the AM, so match on the AM container ids the RM lists).
fn nm_containers(nm_http: &str) -> Vec<Value> {
    let (_, v) = http_json("GET", &format!("{nm_http}/ws/v1/node/containers"), None).expect("NM containers");
    v["containers"].as_array().cloned().unwrap_or_default()
}

fn am_container_ids(c: &Cluster, app: &str) -> Vec<String> {
    let attempts = c.get(&format!("/ws/v1/cluster/apps/{app}/appattempts")).expect("attempts");
    attempts["appAttempts"]["appAttempt"]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|a| a["containerId"].as_str().map(str::to_owned))
        .collect()
}

/// Every container of `app` but its AM containers.
fn workers_of(c: &Cluster, app: &Value) -> Vec<Value> {
    let am = am_container_ids(c, app["id"].as_str().expect("id"));
    containers_of(c, app).into_iter().filter(|w| !am.iter().any(|id| w["containerId"] == id.as_str())).collect()
}

#[test]
fn dshell_over_the_cli_succeeds_with_containers_on_both_nodes() {
    let mut c = cluster();
    let out = c.weft(&["dshell", "--containers", "4", "--memory-mb", "128", "--", "echo", "hello from $CONTAINER_ID"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "dshell failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let id = app_id_in(&stdout).expect("dshell prints the app id");
    let app = c.app(&id).unwrap();
    assert_eq!((app["state"].as_str(), app["finalStatus"].as_str()), (Some("FINISHED"), Some("SUCCEEDED")), "{app}");
    assert_eq!(app["applicationType"], "DSHELL");
    let workers = workers_of(&c, &app);
    assert_eq!(workers.len(), 4, "{workers:#?}");
    assert!(workers.iter().all(|w| w["containerExitStatus"] == 0));
    let nodes: std::collections::BTreeSet<&str> = workers.iter().map(|w| w["nodeId"].as_str().unwrap()).collect();
    assert_eq!(nodes.len(), 2, "containers spread over both nodes: {nodes:?}");

    // The containers' stdout is readable through `weft logs`.
    let worker = workers[0]["containerId"].as_str().unwrap();
    let logs = c.weft(&["logs", &id, "--container", worker]);
    let text = String::from_utf8_lossy(&logs.stdout);
    assert!(
        logs.status.success() && text.contains(&format!("hello from {worker}")),
        "{text}\n{}",
        String::from_utf8_lossy(&logs.stderr)
    );

    // The RM names the finished app in each NM's heartbeat: the NM deletes the app's work dirs
    // at once (delete-debug-delay-ms 0) and keeps its logs (log-retain-ms, 3 hours).
    for nm in ["nm1", "nm2"] {
        let work = c.path().join(nm).join("work").join(&id);
        wait_for(&format!("{nm} deleted {}", work.display()), MINUTE, || (!work.exists()).then_some(())).unwrap();
        assert!(c.path().join(nm).join("logs").join(&id).is_dir(), "{nm} keeps the app's logs");
    }
    c.assert_all_alive().unwrap();
}

/// An AM's ask can name a node (YARN's ResourceRequest locality): every container of a
/// dshell given `--location` runs on that node, where an ask for anywhere spreads over both.
#[test]
fn a_node_local_ask_runs_every_container_on_the_named_node() {
    let mut c = cluster();
    let nodes = c.get("/ws/v1/cluster/nodes").unwrap();
    let node_ids: Vec<String> =
        nodes["nodes"]["node"].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(node_ids.len(), 2, "{nodes}");
    for target in &node_ids {
        let out = c.weft(&["dshell", "--containers", "4", "--memory-mb", "128", "--location", target, "--", "true"]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "dshell failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        let id = app_id_in(&stdout).expect("dshell prints the app id");
        let app = c.app(&id).unwrap();
        let workers = workers_of(&c, &app);
        assert_eq!(workers.len(), 4, "{workers:#?}");
        let placed: Vec<&str> = workers.iter().map(|w| w["nodeId"].as_str().unwrap()).collect();
        assert!(placed.iter().all(|n| n == target), "asked for {target}, placed on {placed:?}");
    }
    c.assert_all_alive().unwrap();
}

/// A client waiting for an app long-polls its resource: the RM answers the moment the app ends
/// (not at the client's next poll), or at the wait's end with the app as it is then.
#[test]
fn a_long_poll_on_an_app_returns_when_it_finishes() {
    let mut c = cluster();
    let marker = c.path().join("finish");
    let cmd = format!("while [ ! -e {} ]; do sleep 0.05; done", marker.display());
    let (mut dshell, id) = dshell_background(&c, &["--containers", "1", "--memory-mb", "128", "--", &cmd]);
    wait_for("the app to run", MINUTE, || (c.app(&id).ok()?["state"] == "RUNNING").then_some(())).unwrap();

    // A short wait on a running app ends with the app as it is, after the wait.
    let asked = Instant::now();
    let app = c.get(&format!("/ws/v1/cluster/apps/{id}?waitForFinalMs=300")).unwrap();
    assert_eq!(app["app"]["state"], "RUNNING", "{app}");
    assert!(asked.elapsed() >= Duration::from_millis(300), "answered after {:?}", asked.elapsed());
    let (status, err) = c.call("GET", &format!("/ws/v1/cluster/apps/{id}?waitForFinalMs=soon"), None).unwrap();
    assert_eq!((status, err["RemoteException"]["code"].as_str()), (400, Some("WEFT-QUERY-INVALID")), "{err}");

    // A long wait is answered when the app finishes, long before the wait is over.
    let url = format!("{}/ws/v1/cluster/apps/{id}?waitForFinalMs=60000", c.rm_url());
    let waiter = std::thread::spawn(move || {
        let asked = Instant::now();
        let reply = http_with_timeout("GET", &url, None, "application/json", Duration::from_secs(90));
        (reply, asked.elapsed())
    });
    let wait = std::thread::spawn({
        let (bin, rm, id) = (weft_bin(), c.rm_url().to_owned(), id.clone());
        move || Command::new(bin).args(["app", "wait", &id]).env("WEFT_RM", rm).env("WEFT_LOG", "warn").output()
    });
    std::fs::write(&marker, "").unwrap();
    let (reply, waited) = waiter.join().unwrap();
    let (status, _, body) = reply.unwrap();
    let app: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((status, app["app"]["state"].as_str()), (200, Some("FINISHED")), "{body}");
    assert!(waited < Duration::from_secs(30), "the long-poll was not woken by the finish: {waited:?}");
    let wait = wait.join().unwrap().unwrap();
    assert!(wait.status.success(), "weft app wait: {wait:?}");
    assert!(dshell.wait().unwrap().success());
    c.assert_all_alive().unwrap();
}

/// An ApplicationMaster written in three lines of shell: the protocol needs nothing but curl.
#[test]
fn rest_submission_with_a_curl_am_finishes_succeeded() {
    let mut c = cluster();
    let (status, new_app) = c.call("POST", "/ws/v1/cluster/apps/new-application?user.name=alice", None).unwrap();
    assert_eq!(status, 200);
    let id = new_app["application-id"].as_str().unwrap().to_owned();
    assert_eq!(new_app["maximum-resource-capability"], json!({"memory": 8192, "vCores": 4}));
    let script = r#"set -e
auth="Authorization: Bearer $WEFT_AM_TOKEN"
curl -sf -X POST -H "$auth" -H 'Content-Type: application/json' -d '{}' "$WEFT_RM_ADDRESSES/ws/v1/weft/am/register"
echo "registered $APPLICATION_ATTEMPT_ID with $GREETING"
curl -sf -X POST -H "$auth" -H 'Content-Type: application/json' -d '{"final_status":"SUCCEEDED","diagnostics":"all good"}' "$WEFT_RM_ADDRESSES/ws/v1/weft/am/finish""#;
    let script_path = c.path().join("am.sh");
    std::fs::write(&script_path, script).unwrap();
    let body = json!({
        "application-id": id, "application-name": "curl-am", "queue": "default",
        "application-type": "SHELL", "application-tags": {"tag": ["e2e", "curl"]},
        "resource": {"memory": 128, "vCores": 1},
        "am-container-spec": {
            "commands": {"command": "bash am.sh"},
            "environment": {"entry": [{"key": "GREETING", "value": "hi"}]},
            "local-resources": {"entry": [{"key": "am.sh", "value": {"resource": format!("file://{}", script_path.display()), "type": "FILE", "visibility": "APPLICATION"}}]}
        }
    });
    let url = format!("{}/ws/v1/cluster/apps?user.name=alice", c.rm_url());
    let (status, headers, _) =
        weft_tests::http_full("POST", &url, Some(&body.to_string()), "application/json").unwrap();
    assert_eq!(status, 202);
    let location = headers.iter().find(|(k, _)| k == "location").map(|(_, v)| v.clone()).unwrap();
    assert!(location.ends_with(&format!("/ws/v1/cluster/apps/{id}")), "{location}");
    let app = c.wait_for_final(&id, MINUTE).unwrap();
    assert_eq!(app["finalStatus"], "SUCCEEDED", "{app}");
    assert_eq!(app["diagnostics"], "all good");
    assert_eq!(app["user"], "alice");
    assert_eq!(app["applicationTags"], "e2e,curl");
    let am = am_container_ids(&c, &id).pop().unwrap();
    let logs = c.weft(&["logs", &id, "--container", &am]);
    assert!(String::from_utf8_lossy(&logs.stdout).contains("with hi"), "{}", String::from_utf8_lossy(&logs.stdout));
    c.assert_all_alive().unwrap();
}

/// Reads the cgroup v1 directory of `pid` for `controller`.
fn v1_cgroup_dir(pid: u64, controller: &str) -> Option<std::path::PathBuf> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let line = text.lines().find(|l| l.split(':').nth(1).is_some_and(|cs| cs.split(',').any(|c| c == controller)))?;
    let path = line.splitn(3, ':').nth(2)?.trim_start_matches('/');
    Some(Path::new("/sys/fs/cgroup").join(controller).join(path))
}

#[test]
fn containers_run_in_cgroups_with_their_limits_which_are_removed_afterwards() {
    let mut c = Cluster::start(ClusterOptions { isolation: "cgroup-v1".into(), ..Default::default() })
        .expect("cgroups must be usable on this host");
    let marker = c.path().join("release");
    let wait = format!("while [ ! -e {} ]; do sleep 0.05; done", marker.display());
    let (mut dshell, id) =
        dshell_background(&c, &["--containers", "1", "--memory-mb", "256", "--vcores", "2", "--", &wait]);
    let worker = wait_for("the worker to run", MINUTE, || {
        let ams = am_container_ids(&c, &id);
        c.nms.iter().flat_map(|nm| nm_containers(&nm.http_address)).find(|w| {
            w["state"] == "RUNNING"
                && !ams.contains(&w["container_id"].as_str().unwrap_or("").to_owned())
                && w["pid"].is_u64()
        })
    })
    .unwrap();
    let pid = worker["pid"].as_u64().unwrap();
    let memory = v1_cgroup_dir(pid, "memory").unwrap();
    let cpu = v1_cgroup_dir(pid, "cpu").unwrap();
    let pids = v1_cgroup_dir(pid, "pids").unwrap();
    let read = |p: &Path, f: &str| {
        std::fs::read_to_string(p.join(f)).unwrap_or_else(|e| panic!("{}/{f}: {e}", p.display())).trim().to_owned()
    };
    assert_eq!(read(&memory, "memory.limit_in_bytes"), (256u64 << 20).to_string());
    assert_eq!(read(&cpu, "cpu.shares"), "2048");
    assert_ne!(read(&pids, "pids.max"), "max");
    assert!(memory.to_string_lossy().contains(worker["container_id"].as_str().unwrap()), "{}", memory.display());
    assert!(read(&memory, "cgroup.procs").lines().any(|l| l == pid.to_string()));

    std::fs::write(&marker, "").unwrap();
    let status = dshell.wait().unwrap();
    assert!(status.success());
    wait_for("the container's cgroups to be removed", Duration::from_secs(10), || {
        (!memory.exists() && !cpu.exists() && !pids.exists()).then_some(())
    })
    .unwrap();
    assert!(!Path::new(&format!("/proc/{pid}")).exists(), "container process outlived its container");
    c.assert_all_alive().unwrap();
}

#[test]
fn memory_hog_is_killed_with_pmem_exit_status_and_the_app_fails() {
    let mut c = cluster();
    // `tail` buffers its whole input when there is no newline: ~600 MB against a 128 MB limit.
    let out =
        c.weft(&["dshell", "--containers", "1", "--memory-mb", "128", "--", "head -c 600000000 /dev/zero | tail"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "the app must fail: {stdout}");
    let id = app_id_in(&stdout).unwrap();
    let app = c.app(&id).unwrap();
    assert_eq!((app["state"].as_str(), app["finalStatus"].as_str()), (Some("FINISHED"), Some("FAILED")), "{app}");
    let diagnostics = app["diagnostics"].as_str().unwrap();
    assert!(diagnostics.contains("-104"), "{diagnostics}");
    let hog =
        containers_of(&c, &app).into_iter().find(|w| w["containerExitStatus"] == -104).expect("a container with -104");
    let diag = hog["diagnosticsInfo"].as_str().unwrap_or("");
    assert!(diag.contains("physical memory"), "diagnostic names usage and limit: {diag}");
    c.assert_all_alive().unwrap();
}

#[test]
fn a_nodemanager_killed_mid_app_loses_its_containers_and_the_app_still_succeeds() {
    let mut c = cluster();
    let marker = c.path().join("go");
    let cmd = format!("while [ ! -e {} ]; do sleep 0.05; done", marker.display());
    let (mut dshell, id) = dshell_background(&c, &["--containers", "4", "--memory-mb", "128", "--", &cmd]);
    // Wait until all four workers run, then kill the NM that does not host the AM.
    let am_node = wait_for("workers running", MINUTE, || {
        let app = c.app(&id).ok()?;
        let live = containers_of(&c, &app).into_iter().filter(|w| w["containerState"] == "RUNNING").count();
        (live == 5)
            .then(|| c.get(&format!("/ws/v1/cluster/apps/{id}/appattempts")).ok())?
            .map(|a| a["appAttempts"]["appAttempt"][0]["nodeId"].as_str().unwrap_or("").to_owned())
    })
    .unwrap();
    let victim = c.nms.iter().position(|nm| !nm.http_address.ends_with(am_node.rsplit(':').next().unwrap())).unwrap();
    let victim_node = c.nms[victim].http_address.trim_start_matches("http://").to_owned();
    c.kill_nm(victim, libc::SIGKILL);
    wait_for("the node to be LOST", MINUTE, || {
        let n = c.get(&format!("/ws/v1/cluster/nodes/{victim_node}")).ok()?;
        (n["node"]["state"] == "LOST").then_some(())
    })
    .unwrap();
    std::fs::write(&marker, "").unwrap();
    assert!(dshell.wait().unwrap().success());
    let app = c.app(&id).unwrap();
    assert_eq!(app["finalStatus"], "SUCCEEDED", "{app}");
    let all = containers_of(&c, &app);
    let aborted = all.iter().filter(|w| w["containerExitStatus"] == -100).count();
    assert!(aborted >= 1, "containers on the lost node complete ABORTED: {all:#?}");
    let succeeded = all
        .iter()
        .filter(|w| w["containerExitStatus"] == 0 && w["nodeId"].as_str() != Some(victim_node.as_str()))
        .count();
    assert!(succeeded >= 4, "lost work was re-run elsewhere: {all:#?}");
    c.assert_all_alive().unwrap();
}

#[test]
fn killing_the_am_process_starts_a_second_attempt_that_succeeds() {
    let mut c = cluster();
    let marker = c.path().join("go");
    let cmd = format!("while [ ! -e {} ]; do sleep 0.05; done", marker.display());
    let (mut dshell, id) = dshell_background(&c, &["--containers", "2", "--memory-mb", "128", "--", &cmd]);
    let am_pid = wait_for("the AM to run", MINUTE, || {
        let am = am_container_ids(&c, &id).pop()?;
        c.nms
            .iter()
            .flat_map(|nm| nm_containers(&nm.http_address))
            .find(|w| w["container_id"] == am.as_str() && w["state"] == "RUNNING")?["pid"]
            .as_i64()
    })
    .unwrap();
    wait_for("the app to run", MINUTE, || (c.app(&id).ok()?["state"] == "RUNNING").then_some(())).unwrap();
    // SAFETY: kill(2) on the AM's process group.
    unsafe { libc::kill(-(am_pid as i32), libc::SIGKILL) };
    wait_for("a second attempt", MINUTE, || (am_container_ids(&c, &id).len() == 2).then_some(())).unwrap();
    std::fs::write(&marker, "").unwrap();
    assert!(dshell.wait().unwrap().success());
    let attempts = c.get(&format!("/ws/v1/cluster/apps/{id}/appattempts")).unwrap();
    let attempts = attempts["appAttempts"]["appAttempt"].as_array().unwrap().clone();
    assert_eq!(attempts[0]["appAttemptState"], "FAILED", "{attempts:#?}");
    assert_eq!(attempts[1]["appAttemptState"], "FINISHED");
    assert_eq!(c.app(&id).unwrap()["finalStatus"], "SUCCEEDED");
    c.assert_all_alive().unwrap();
}

/// A single RM on SQLite restarts work-preservingly, like an HA failover: finished apps stay
/// listed, the running app keeps its attempt and its worker keeps running.
#[test]
fn an_rm_restart_keeps_finished_apps_and_running_work() {
    let mut c = cluster();
    let out = c.weft(&["dshell", "--containers", "1", "--", "true"]);
    let done = app_id_in(&String::from_utf8_lossy(&out.stdout)).unwrap();
    assert!(out.status.success());
    let marker = c.path().join("go");
    let starts = c.path().join("starts");
    std::fs::create_dir_all(&starts).unwrap();
    let cmd =
        format!("touch {}/$CONTAINER_ID; while [ ! -e {} ]; do sleep 0.05; done", starts.display(), marker.display());
    let (mut dshell, running) = dshell_background(&c, &["--containers", "1", "--memory-mb", "128", "--", &cmd]);
    wait_for("the worker to run", MINUTE, || (starts.read_dir().ok()?.count() == 1).then_some(())).unwrap();

    c.restart_rm().unwrap();
    let app = c.app(&done).unwrap();
    assert_eq!((app["state"].as_str(), app["finalStatus"].as_str()), (Some("FINISHED"), Some("SUCCEEDED")));
    c.wait_for_nodes(2).unwrap();
    wait_for("the AM to register again", MINUTE, || (c.app(&running).ok()?["state"] == "RUNNING").then_some(()))
        .unwrap();
    std::fs::write(&marker, "").unwrap();
    let app = c.wait_for_final(&running, MINUTE).unwrap();
    assert_eq!(app["finalStatus"], "SUCCEEDED", "{app}");
    assert_eq!(am_container_ids(&c, &running).len(), 1, "the app kept its attempt");
    assert_eq!(starts.read_dir().unwrap().count(), 1, "the worker was not started again");
    let _ = dshell.wait();
    // New ids do not collide with the old incarnation's.
    let (_, fresh) = c.call("POST", "/ws/v1/cluster/apps/new-application?user.name=alice", None).unwrap();
    assert_ne!(fresh["application-id"].as_str().unwrap(), done);
    assert_eq!(c.get("/ws/v1/cluster/info").unwrap()["clusterInfo"]["rmEpoch"], 2);
    c.assert_all_alive().unwrap();
}

#[test]
fn kill_over_rest_stops_every_container() {
    let mut c = cluster();
    let (mut dshell, id) = dshell_background(&c, &["--containers", "3", "--memory-mb", "128", "--", "sleep 600"]);
    wait_for("workers running", MINUTE, || {
        let app = c.app(&id).ok()?;
        (containers_of(&c, &app).iter().filter(|w| w["containerState"] == "RUNNING").count() == 4).then_some(())
    })
    .unwrap();
    let (status, body) = c
        .call("PUT", &format!("/ws/v1/cluster/apps/{id}/state?user.name=tester"), Some(&json!({"state": "KILLED"})))
        .unwrap();
    assert_eq!((status, body), (200, json!({"state": "KILLED"})));
    let app = c.app(&id).unwrap();
    assert_eq!((app["state"].as_str(), app["finalStatus"].as_str()), (Some("KILLED"), Some("KILLED")));
    wait_for("no container left running on any NM", Duration::from_secs(20), || {
        c.nms.iter().flat_map(|nm| nm_containers(&nm.http_address)).all(|w| w["state"] != "RUNNING").then_some(())
    })
    .unwrap();
    assert!(!dshell.wait().unwrap().success(), "dshell reports the app did not succeed");
    // Killing again is harmless.
    let (status, _) = c
        .call("PUT", &format!("/ws/v1/cluster/apps/{id}/state?user.name=tester"), Some(&json!({"state": "KILLED"})))
        .unwrap();
    assert_eq!(status, 200);
    c.assert_all_alive().unwrap();
}

#[test]
fn rest_endpoints_have_yarn_shapes_and_filters() {
    let mut c = cluster();
    let out = c.weft(&["dshell", "--containers", "1", "--", "true"]);
    let id = app_id_in(&String::from_utf8_lossy(&out.stdout)).unwrap();

    let info = c.get("/ws/v1/cluster/info").unwrap();
    assert_eq!(info["clusterInfo"]["haState"], "ACTIVE");
    assert_eq!(info["clusterInfo"]["state"], "STARTED");
    assert_eq!(c.get("/ws/v1/cluster").unwrap(), info);
    let m = &c.get("/ws/v1/cluster/metrics").unwrap()["clusterMetrics"];
    assert_eq!(
        (m["activeNodes"].as_u64(), m["totalMB"].as_u64(), m["appsCompleted"].as_u64()),
        (Some(2), Some(4096), Some(1)),
        "{m}"
    );
    let s = &c.get("/ws/v1/cluster/scheduler").unwrap()["scheduler"]["schedulerInfo"];
    assert_eq!(s["type"], "fifoScheduler");
    assert_eq!(s["numNodes"], 2);

    let apps = c.get("/ws/v1/cluster/apps").unwrap();
    assert_eq!(apps["apps"]["app"].as_array().unwrap().len(), 1);
    let app = &apps["apps"]["app"][0];
    for field in [
        "id",
        "user",
        "name",
        "queue",
        "state",
        "finalStatus",
        "progress",
        "trackingUI",
        "diagnostics",
        "applicationType",
        "applicationTags",
        "startedTime",
        "finishedTime",
        "elapsedTime",
        "amContainerLogs",
        "allocatedMB",
        "runningContainers",
        "memorySeconds",
        "vcoreSeconds",
    ] {
        assert!(app.get(field).is_some(), "app is missing {field}: {app}");
    }
    assert_eq!(app["runningContainers"], -1);
    assert_eq!(app["trackingUI"], "History");
    let count = |q: &str| c.get(&format!("/ws/v1/cluster/apps?{q}")).unwrap()["apps"]["app"].as_array().unwrap().len();
    assert_eq!(count("states=finished"), 1);
    assert_eq!(count("states=RUNNING,ACCEPTED"), 0, "empty lists are arrays, not null");
    assert_eq!(count("user=tester"), 1);
    assert_eq!(count("user=nobody"), 0);
    assert_eq!(count("applicationTypes=dshell"), 1);
    assert_eq!(count("applicationTypes=MAPREDUCE"), 0);
    assert_eq!(count("queue=default"), 0, "the queue filter lists unfinished apps only, as YARN");
    assert_eq!(count("limit=1"), 1);
    assert_eq!(count("applicationTags=none"), 0);
    assert_eq!(c.get(&format!("/ws/v1/cluster/apps/{id}")).unwrap()["app"]["id"], id.as_str());
    assert_eq!(c.get(&format!("/ws/v1/cluster/apps/{id}/state")).unwrap(), json!({"state": "FINISHED"}));
    let attempts = c.get(&format!("/ws/v1/cluster/apps/{id}/appattempts")).unwrap();
    let a = &attempts["appAttempts"]["appAttempt"][0];
    assert_eq!((a["id"].as_u64(), a["appAttemptState"].as_str()), (Some(1), Some("FINISHED")), "{a}");
    assert!(a["containerId"].as_str().unwrap().starts_with("container_e"));

    let nodes = c.get("/ws/v1/cluster/nodes").unwrap();
    let node = &nodes["nodes"]["node"][0];
    assert_eq!(node["state"], "RUNNING");
    assert_eq!(node["totalResource"], json!({"memory": 2048, "vCores": 8}));
    let node_id = node["id"].as_str().unwrap();
    assert_eq!(c.get(&format!("/ws/v1/cluster/nodes/{node_id}")).unwrap()["node"]["id"], node_id);
    assert_eq!(c.get("/ws/v1/cluster/nodes?states=LOST").unwrap()["nodes"]["node"], json!([]));

    let (status, text) = http("GET", &format!("{}/metrics", c.rm_url()), None, "text/plain").unwrap();
    assert_eq!(status, 200);
    assert!(text.contains("weft_rm_nodes{state=\"RUNNING\"} 2"), "{text}");
    assert!(text.contains("weft_rm_allocation_latency_seconds_bucket"), "{text}");
    let (status, text) = http("GET", &format!("{}/metrics", c.nms[0].http_address), None, "text/plain").unwrap();
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("weft_nm"), "{text}");
    c.assert_all_alive().unwrap();
}

#[test]
fn bad_input_gets_clear_errors_and_changes_nothing() {
    let mut c = cluster();
    let submit = |body: &str| {
        http_json(
            "POST",
            &format!("{}/ws/v1/cluster/apps?user.name=alice", c.rm_url()),
            Some(&serde_json::from_str(body).unwrap_or(Value::String(body.into()))),
        )
    };
    let new_id = || {
        c.call("POST", "/ws/v1/cluster/apps/new-application?user.name=alice", None).unwrap().1["application-id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let code = |v: &Value| v["RemoteException"]["code"].as_str().unwrap_or("").to_owned();

    // Malformed JSON.
    let (s, v) = http(
        "POST",
        &format!("{}/ws/v1/cluster/apps?user.name=alice", c.rm_url()),
        Some("{not json"),
        "application/json",
    )
    .unwrap();
    assert_eq!(s, 400, "{v}");
    assert!(v.contains("WEFT-BODY-INVALID"), "{v}");
    // Unknown queue, negative and oversized resources, missing commands.
    let id = new_id();
    let base = |extra: &str| {
        format!(r#"{{"application-id":"{id}","am-container-spec":{{"commands":{{"command":"true"}}}}{extra}}}"#)
    };
    let (s, v) = submit(&base(r#","queue":"nope""#)).unwrap();
    assert_eq!((s, code(&v).as_str()), (400, "WEFT-QUEUE-UNKNOWN"), "{v}");
    let (s, v) = submit(&base(r#","resource":{"memory":-1,"vCores":1}"#)).unwrap();
    assert_eq!(s, 400);
    assert!(v["RemoteException"]["message"].as_str().unwrap().contains("resource.memory"), "{v}");
    let (s, v) = submit(&base(r#","resource":{"memory":999999,"vCores":1}"#)).unwrap();
    assert_eq!((s, code(&v).as_str()), (400, "WEFT-RESOURCE-ABOVE-MAXIMUM"), "{v}");
    assert!(!v["RemoteException"]["hint"].as_str().unwrap().is_empty());
    let (s, v) = submit(&format!(r#"{{"application-id":"{id}"}}"#)).unwrap();
    assert_eq!((s, code(&v).as_str()), (400, "WEFT-SUBMISSION-INVALID"), "{v}");
    assert_eq!(c.get("/ws/v1/cluster/apps").unwrap()["apps"]["app"], json!([]), "nothing was created");
    // A second submit of the same id.
    let (s, _) = submit(&base(r#","resource":{"memory":128,"vCores":1}"#)).unwrap();
    assert_eq!(s, 202);
    let (s, v) = submit(&base("")).unwrap();
    assert_eq!((s, code(&v).as_str()), (400, "WEFT-APP-ALREADY-SUBMITTED"), "{v}");
    // Ids never issued, unknown and malformed ids.
    let (s, v) = submit(
        r#"{"application-id":"application_9999999999999_9999","am-container-spec":{"commands":{"command":"true"}}}"#,
    )
    .unwrap();
    assert_eq!((s, code(&v).as_str()), (400, "WEFT-APP-ID-NOT-ISSUED"), "{v}");
    let (s, v) = c.call("GET", "/ws/v1/cluster/apps/application_9999999999999_9999", None).unwrap();
    assert_eq!((s, v["RemoteException"]["exception"].as_str()), (404, Some("NotFoundException")));
    let (s, _) = c.call("GET", "/ws/v1/cluster/apps/bogus", None).unwrap();
    assert_eq!(s, 400);
    let (s, _) = c
        .call(
            "PUT",
            "/ws/v1/cluster/apps/application_9999999999999_9999/state?user.name=a",
            Some(&json!({"state": "KILLED"})),
        )
        .unwrap();
    assert_eq!(s, 404);
    let (s, v) = c
        .call("PUT", &format!("/ws/v1/cluster/apps/{id}/state?user.name=a"), Some(&json!({"state": "RUNNING"})))
        .unwrap();
    assert_eq!(s, 400, "{v}");
    let (s, _) = c.call("GET", "/ws/v1/cluster/apps?states=BOGUS", None).unwrap();
    assert_eq!(s, 400);
    let (s, _) = c.call("GET", "/ws/v1/cluster/apps?limit=0", None).unwrap();
    assert_eq!(s, 400);
    let (s, _) = c.call("POST", "/ws/v1/cluster/apps/new-application", None).unwrap();
    assert_eq!(s, 401, "writes need ?user.name=");
    // AM calls need a valid AM token.
    let (s, v) = c.call("POST", "/ws/v1/weft/am/allocate", Some(&json!({"response_id": 0}))).unwrap();
    assert_eq!((s, code(&v).as_str()), (401, "WEFT-AM-TOKEN-INVALID"), "{v}");

    // A bad YAML config names the file, the line and the field; nothing starts.
    let bad = c.path().join("bad-rm.yaml");
    std::fs::write(&bad, "bind: 127.0.0.1:0\nscheduler:\n  minimum-allocation:\n    memory-mb: 128\n    vcorez: 1\n")
        .unwrap();
    let out = c.weft(&["config", "check", bad.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("bad-rm.yaml") && err.contains("line 5") && err.contains("vcorez"), "{err}");
    let out = c.weft(&["rm", "--config", bad.to_str().unwrap()]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("vcorez"));
    let good = c.path().join("rm.yaml");
    let out = c.weft(&["config", "check", good.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    c.assert_all_alive().unwrap();
}

#[test]
fn a_ten_container_gang_waits_while_nine_fit_then_starts_all_at_once() {
    // 2 × 1024 MB: two AMs (256 MB each) and 3 blocker containers leave 9 slots of 128 MB.
    let mut c = Cluster::start(ClusterOptions { nm_memory_mb: 1024, ..Default::default() }).unwrap();
    let marker = c.path().join("release-blocker");
    let wait = format!("while [ ! -e {} ]; do sleep 0.05; done", marker.display());
    let (mut blocker, blocker_id) =
        dshell_background(&c, &["--containers", "3", "--memory-mb", "128", "--am-memory-mb", "256", "--", &wait]);
    wait_for("blocker containers running", MINUTE, || {
        let app = c.app(&blocker_id).ok()?;
        (containers_of(&c, &app).len() == 4).then_some(())
    })
    .unwrap();
    let (mut gang, gang_id) = dshell_background(
        &c,
        &["--gang", "--containers", "10", "--memory-mb", "128", "--am-memory-mb", "256", "--", "true"],
    );
    let pending = wait_for("the gang ask to be pending", MINUTE, || {
        let app = c.app(&gang_id).ok()?;
        let asks = app["resourceRequests"].as_array()?.clone();
        asks.iter().find(|a| a["numContainers"] == 10).cloned()
    })
    .unwrap();
    assert_eq!(pending["capability"]["memory"], 128);
    let metrics = &c.get("/ws/v1/cluster/metrics").unwrap()["clusterMetrics"];
    assert_eq!(metrics["availableMB"], 9 * 128, "exactly 9 slots are free: {metrics}");
    assert_eq!(containers_of(&c, &c.app(&gang_id).unwrap()).len(), 1, "nothing but the gang's AM runs");

    std::fs::write(&marker, "").unwrap();
    assert!(blocker.wait().unwrap().success());
    assert!(gang.wait().unwrap().success());
    let app = c.app(&gang_id).unwrap();
    assert_eq!(app["finalStatus"], "SUCCEEDED", "{app}");
    let ams = am_container_ids(&c, &gang_id);
    let workers: Vec<Value> = containers_of(&c, &app)
        .into_iter()
        .filter(|w| !ams.contains(&w["containerId"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(workers.len(), 10);
    let allocated_at: std::collections::BTreeSet<u64> =
        workers.iter().map(|w| w["startedTime"].as_u64().unwrap()).collect();
    assert_eq!(allocated_at.len(), 1, "all ten were allocated in one step: {allocated_at:?}");
    c.assert_all_alive().unwrap();
}

#[test]
fn preemption_gives_queue_b_its_guarantee_and_only_a_loses_containers_with_102() {
    let queues = "scheduler: capacity
preemption: {enabled: true, monitoring-interval-ms: 500, max-wait-before-kill-ms: 2000, natural-termination-factor: 1.0, total-preemption-per-round: 1.0}
queues:
  a: {capacity: 70%, user-limit-factor: -1, max-am-resource-percent: 0.5}
  b: {capacity: 30%, user-limit-factor: -1, max-am-resource-percent: 0.5}
";
    // 2 × 1280 MB = 20 slots of 128 MB; B's guarantee is 6 slots.
    let mut c = Cluster::start(ClusterOptions {
        nm_memory_mb: 1280,
        nm_vcores: 64,
        queues_yaml: Some(queues.into()),
        ..Default::default()
    })
    .unwrap();
    let (mut a, a_id) =
        dshell_background(&c, &["--queue", "a", "--containers", "40", "--memory-mb", "128", "--", "sleep 600"]);
    wait_for("A to fill the cluster", MINUTE, || {
        let m = c.get("/ws/v1/cluster/metrics").ok()?;
        (m["clusterMetrics"]["availableMB"] == 0).then_some(())
    })
    .unwrap();
    let out = c.weft(&["dshell", "--queue", "b", "--containers", "4", "--memory-mb", "128", "--", "true"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "B gets room through preemption and succeeds: {stdout}");
    let b_id = app_id_in(&stdout).unwrap();
    assert_eq!(c.app(&b_id).unwrap()["queue"], "b");

    let a_app = c.app(&a_id).unwrap();
    assert_eq!(a_app["state"], "RUNNING", "A keeps running: {a_app}");
    let a_containers = containers_of(&c, &a_app);
    let preempted = a_containers.iter().filter(|w| w["containerExitStatus"] == -102).count();
    assert!(preempted >= 1, "A lost containers to preemption: {a_containers:#?}");
    let other_endings: Vec<&Value> =
        a_containers.iter().filter(|w| w["containerState"] == "COMPLETE" && w["containerExitStatus"] != -102).collect();
    assert!(other_endings.is_empty(), "nothing else of A was killed: {other_endings:#?}");
    let (_, text) = http("GET", &format!("{}/metrics", c.rm_url()), None, "text/plain").unwrap();
    assert!(text.lines().any(|l| l.starts_with("weft_rm_containers_preempted_total ") && !l.ends_with(" 0")), "{text}");
    let _ =
        c.call("PUT", &format!("/ws/v1/cluster/apps/{a_id}/state?user.name=tester"), Some(&json!({"state": "KILLED"})));
    let _ = a.wait();
    c.assert_all_alive().unwrap();
}

#[test]
fn queues_are_administered_over_rest_and_the_cli_with_acls_reload_moves_and_priorities() {
    let queues = "scheduler: capacity
root: {acl-submit-applications: \" \", acl-administer-queue: \"tester\"}
queues:
  a: {capacity: 60%, acl-submit-applications: \"tester\", max-application-priority: 5, max-am-resource-percent: 0.5}
  b: {capacity: 40%, acl-submit-applications: \"tester\", max-am-resource-percent: 0.5}
";
    let mut c = Cluster::start(ClusterOptions { queues_yaml: Some(queues.into()), ..Default::default() }).unwrap();
    let queues_file = c.path().join("queues.yaml");
    let info = c.get("/ws/v1/cluster/scheduler").unwrap();
    assert_eq!(info["scheduler"]["schedulerInfo"]["type"], "capacityScheduler");

    // ACLs: only tester may submit.
    let (_, new_app) = c.call("POST", "/ws/v1/cluster/apps/new-application?user.name=mallory", None).unwrap();
    let body = json!({"application-id": new_app["application-id"], "queue": "a", "am-container-spec": {"commands": {"command": "true"}}});
    let (status, err) = c.call("POST", "/ws/v1/cluster/apps?user.name=mallory", Some(&body)).unwrap();
    assert_eq!((status, err["RemoteException"]["code"].as_str()), (403, Some("WEFT-QUEUE-ACL-DENIED")), "{err}");

    let marker = c.path().join("go");
    let cmd = format!("while [ ! -e {} ]; do sleep 0.05; done", marker.display());
    let (mut dshell, id) =
        dshell_background(&c, &["--queue", "a", "--containers", "1", "--memory-mb", "128", "--", &cmd]);
    wait_for("the app to run", MINUTE, || (c.app(&id).ok()?["state"] == "RUNNING").then_some(())).unwrap();

    let list = c.weft(&["queue", "list"]);
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(list.status.success() && text.contains("root.a") && text.contains("root.b"), "{text}");

    // A valid change is applied with the app running.
    std::fs::write(
        &queues_file,
        queues.replace(
            "b: {capacity: 40%",
            "c: {capacity: 10%, acl-submit-applications: \"tester\"}\n  b: {capacity: 30%",
        ),
    )
    .unwrap();
    let out = c.weft(&["queue", "reload"]);
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let status = c.weft(&["queue", "status", "c"]);
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    assert_eq!(c.app(&id).unwrap()["state"], "RUNNING");

    // An invalid file, and removing the busy queue, are refused; the running tree stays.
    std::fs::write(&queues_file, "scheduler: capacity\nqueues:\n  a: {capacity: 70%}\n  b: {capacity: 20%}\n").unwrap();
    let out = c.weft(&["queue", "reload"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("100"),
        "siblings must sum to 100: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(
        &queues_file,
        queues.replace("a: {capacity: 60%", "z: {capacity: 60%").replace("max-application-priority: 5, ", ""),
    )
    .unwrap();
    let out = c.weft(&["queue", "reload"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("root.a"), "{}", String::from_utf8_lossy(&out.stderr));
    let (_, tree) = http_json("GET", &format!("{}/ws/v1/weft/queues", c.rm_url()), None).unwrap();
    let paths: Vec<&str> = tree.as_array().unwrap().iter().filter_map(|q| q["path"].as_str()).collect();
    assert!(paths.contains(&"root.a") && paths.contains(&"root.c"), "{paths:?}");

    // Only the owner or a queue administrator may kill, move or re-prioritise an app.
    let (status, err) = c
        .call("PUT", &format!("/ws/v1/cluster/apps/{id}/state?user.name=mallory"), Some(&json!({"state": "KILLED"})))
        .unwrap();
    assert_eq!((status, err["RemoteException"]["code"].as_str()), (403, Some("WEFT-APP-ACCESS-DENIED")), "{err}");
    assert_eq!(c.app(&id).unwrap()["state"], "RUNNING");

    // Move the running app to b, and change its priority (capped by b's maximum, 0).
    let (status, moved) = c
        .call("PUT", &format!("/ws/v1/cluster/apps/{id}/queue?user.name=tester"), Some(&json!({"queue": "b"})))
        .unwrap();
    assert_eq!((status, moved), (200, json!({"queue": "b"})));
    assert_eq!(c.get(&format!("/ws/v1/cluster/apps/{id}/queue")).unwrap(), json!({"queue": "b"}));
    let (status, priority) = c
        .call("PUT", &format!("/ws/v1/cluster/apps/{id}/priority?user.name=tester"), Some(&json!({"priority": 9})))
        .unwrap();
    assert_eq!((status, priority), (200, json!({"priority": 0})));

    // The queue filter works for every queue: by leaf name, by path, and for a parent.
    let listed = |queue: &str| -> Vec<String> {
        let apps = c.get(&format!("/ws/v1/cluster/apps?queue={queue}")).unwrap();
        let list = apps["apps"]["app"].as_array().cloned().unwrap_or_default();
        list.iter().map(|a| a["id"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(listed("b"), [id.clone()]);
    assert_eq!(listed("root.b"), [id.clone()]);
    assert_eq!(listed("root"), [id.clone()]);
    assert_eq!(listed("a"), Vec::<String>::new());
    let (status, err) = c.call("GET", "/ws/v1/cluster/apps?queue=nope", None).unwrap();
    assert_eq!((status, err["RemoteException"]["code"].as_str()), (400, Some("WEFT-QUEUE-UNKNOWN")), "{err}");
    let in_b = c.weft(&["app", "list", "--queue", "b"]);
    assert!(in_b.status.success() && String::from_utf8_lossy(&in_b.stdout).contains(&id), "{in_b:?}");
    let in_a = c.weft(&["app", "list", "--queue", "a"]);
    assert!(in_a.status.success() && !String::from_utf8_lossy(&in_a.stdout).contains(&id), "{in_a:?}");

    std::fs::write(&marker, "").unwrap();
    assert!(dshell.wait().unwrap().success());
    let (status, _) = c
        .call("PUT", &format!("/ws/v1/cluster/apps/{id}/queue?user.name=tester"), Some(&json!({"queue": "a"})))
        .unwrap();
    assert_eq!(status, 400, "finished apps cannot move");

    // Editing the file is enough: the RM notices and reloads by itself.
    std::fs::write(
        &queues_file,
        queues.replace(
            "b: {capacity: 40%",
            "d: {capacity: 5%, acl-submit-applications: \"tester\"}\n  b: {capacity: 35%",
        ),
    )
    .unwrap();
    wait_for("the RM to pick up the edited queues file", Duration::from_secs(20), || {
        let (_, tree) = http_json("GET", &format!("{}/ws/v1/weft/queues", c.rm_url()), None).ok()?;
        tree.as_array()?.iter().any(|q| q["path"] == "root.d").then_some(())
    })
    .unwrap();
    c.assert_all_alive().unwrap();
}
