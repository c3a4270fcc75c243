//! The harness against the real binaries: start, create a database, query it, stop, restart.

use weft_pg_harness::PgServer;

#[test]
fn start_create_stop_restart_and_query() {
    let mut server = PgServer::start().unwrap();
    let port = server.port();
    let url = server.create_database("harness_check").unwrap();
    assert_eq!(url, format!("postgres://postgres@127.0.0.1:{port}/harness_check"));
    assert_eq!(server.psql("harness_check", "select 1").unwrap(), "1\n");
    server.psql("harness_check", "create table kept (v int); insert into kept values (42)").unwrap();
    // Only loopback, and the durability settings the harness promises.
    assert_eq!(server.psql("postgres", "show listen_addresses").unwrap(), "127.0.0.1\n");
    assert_eq!(server.psql("postgres", "show fsync").unwrap(), "off\n");

    server.stop().unwrap();
    let error = server.psql("harness_check", "select 1").unwrap_err();
    assert!(format!("{error:#}").contains("psql"), "{error:#}");
    server.stop().unwrap(); // stopping twice is harmless

    server.restart().unwrap();
    assert_eq!(server.port(), port, "a restart keeps the port");
    assert_eq!(server.psql("harness_check", "select v from kept").unwrap(), "42\n", "and the data");
    assert!(server.restart().is_err(), "restarting a running server is refused");
    assert!(server.log_path().is_file());
}

#[test]
fn servers_are_independent_and_dropping_removes_the_files() {
    let first = PgServer::start().unwrap();
    let second = PgServer::start().unwrap();
    assert_ne!(first.port(), second.port());
    first.create_database("only_in_first").unwrap();
    let listed = "select count(*) from pg_database where datname = 'only_in_first'";
    assert_eq!(second.psql("postgres", listed).unwrap(), "0\n");

    let log = first.log_path();
    let dir = log.parent().unwrap().to_owned();
    drop(first);
    assert!(!dir.exists(), "{} outlived its server", dir.display());
    assert_eq!(second.psql("postgres", "select 1").unwrap(), "1\n");
}

#[test]
fn bad_database_names_are_refused() {
    let server = PgServer::start().unwrap();
    for name in ["", "Upper", "semi;colon", "with space", "quote'"] {
        assert!(server.create_database(name).is_err(), "{name:?} was accepted");
    }
}
