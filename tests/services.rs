//! Local services end to end: the real binary starts real servers (postgres, MariaDB, redis,
//! memcached) for small projects in temp dirs, and the tests talk to them with the servers' own
//! clients using only the credentials `env --reveal --format json` advertises.
//!
//! Covered: write / stop / start / read back for each type; kill -9 and recovery; servers run
//! as an unprivileged user with 0700 data when we are root, also for a project under a 0700
//! directory; loopback-only listeners, random per-project credentials, private state files,
//! masked `env`; a remembered port taken by another program; the sqlite fallback and missing
//! servers; a server that cannot start; two `services start` at once; `exec`; `services
//! logs` and `services reset`.
//!
//! A test whose server is not installed prints a loud SKIP and passes, unless
//! `STACKATO_LOCAL_REQUIRE_SERVICES=1`, where it fails (see `common::require`). Every test
//! has its own project, and a guard that stops its servers and deletes their data (also the
//! root-owned `/var/lib/stackato-local/<id>-<name>` directories) even when the test fails.

use std::io::Write;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Stdio;

use crate::common::procs::{
    alive, all_pids, assert_dead, assert_loopback_only, cmdline, kill9, server_pids, uids_of,
};
use crate::common::project::{SYSTEM_ROOT, mariadb_serial};
use crate::common::services::*;
use crate::common::*;

const MASK: &str = "********";

// ---------------------------------------------------------------------------------------------
// 1. Each type: write, stop, start, read back
// ---------------------------------------------------------------------------------------------

/// The first `services start` of a project with service `name` (`kind`): it says the server
/// is ready on 127.0.0.1 and that it initialised its data directory. Its credentials, which
/// point at 127.0.0.1.
#[track_caller]
fn first_start(p: &Project, name: &str, kind: &str) -> Creds {
    p.start()
        .stderr_has(&format!("{name} ({kind}) ready on 127.0.0.1:"))
        .stderr_has("data directory initialised");
    let c = p.creds(name);
    assert_eq!(c.host(), "127.0.0.1");
    c
}

/// `services stop`: it says `name` (`kind`) stopped, and the server (`server`, pid `pid`) is
/// gone.
#[track_caller]
fn stop_gone(p: &Project, name: &str, kind: &str, server: &str, pid: i32) {
    p.stop().stderr_has(&format!("{name} ({kind}) stopped"));
    assert!(!alive(pid), "{server} {pid} still runs after services stop");
}

#[test]
fn postgresql_keeps_rows_across_stop_and_start() {
    if !need(&["postgresql"]) {
        return;
    }
    let p = Project::new("pgapp", &[("pg", "postgresql")]);
    let c = first_start(&p, "pg", "postgresql");
    psql(
        &c,
        "CREATE TABLE notes (id int PRIMARY KEY, body text); INSERT INTO notes VALUES (1, 'kept');",
    )
    .unwrap();
    let pid = p.live_pid("pg");

    stop_gone(&p, "pg", "postgresql", "postgres", pid);
    assert!(p.pid("pg").is_none(), "server.pid left after a clean stop");
    assert!(p.list_line("pg").contains("stopped"));
    assert!(
        psql(&c, "SELECT 1").is_err(),
        "postgres answers after services stop"
    );

    p.start()
        .stderr_has("pg (postgresql) ready")
        .stderr_lacks("initialised");
    assert_eq!(p.creds("pg").0, c.0, "credentials changed across a restart");
    assert_eq!(
        psql(&c, "SELECT body FROM notes WHERE id = 1").unwrap(),
        "kept"
    );
    // The URL variable works as well, as an app would use it.
    let env = p.env_json(&["--reveal"], &[]);
    assert_eq!(
        psql_url(&env["POSTGRESQL_URL"], "SELECT count(*) FROM notes").unwrap(),
        "1"
    );
    assert_eq!(env["DATABASE_URL"], env["POSTGRESQL_URL"]);
}

#[test]
fn mysql_keeps_rows_across_stop_and_start() {
    if !need(&["mysql"]) {
        return;
    }
    let _serial = mariadb_serial();
    let p = Project::new("myapp", &[("my", "mysql")]);
    let c = first_start(&p, "my", "mysql");
    mysql(
        &c,
        "CREATE TABLE notes (id INT PRIMARY KEY, body TEXT) ENGINE=InnoDB; INSERT INTO notes VALUES (1, 'kept');",
    )
    .unwrap();
    let pid = p.live_pid("my");

    stop_gone(&p, "my", "mysql", "mariadbd", pid);
    assert!(mysql(&c, "SELECT 1").is_err(), "MariaDB answers after stop");

    p.start().stderr_lacks("initialised");
    assert_eq!(p.creds("my").0, c.0, "credentials changed across a restart");
    assert_eq!(
        mysql(&c, "SELECT body FROM notes WHERE id = 1").unwrap(),
        "kept"
    );
    let env = p.env_json(&["--reveal"], &[]);
    let url = &env["MYSQL_URL"];
    assert!(
        url.starts_with(&format!(
            "mysql://{}:{}@127.0.0.1:{}/",
            c.get("user"),
            c.get("password"),
            c.port()
        )),
        "MYSQL_URL {url} does not match the credentials {c:?}"
    );
}

#[test]
fn redis_keeps_keys_across_stop_and_start() {
    if !need(&["redis"]) {
        return;
    }
    let p = Project::new("rdapp", &[("rd", "redis")]);
    p.start().stderr_has("rd (redis) ready on 127.0.0.1:");
    let c = p.creds("rd");
    assert_eq!(
        redis(&c, &c.get("password"), &["SET", "greeting", "kept"]),
        "OK"
    );
    let pid = p.live_pid("rd");

    stop_gone(&p, "rd", "redis", "redis-server", pid);

    p.start().stderr_has("rd (redis) ready");
    assert_eq!(redis(&c, &c.get("password"), &["GET", "greeting"]), "kept");
    let env = p.env_json(&["--reveal"], &[]);
    assert_eq!(redis_url(&env["REDIS_URL"], &["GET", "greeting"]), "kept");
}

#[test]
fn memcached_sets_and_gets_and_restarts() {
    if !need(&["memcached"]) {
        return;
    }
    let p = Project::new("mcapp", &[("mc", "memcached")]);
    p.start().stderr_has("mc (memcached) ready on 127.0.0.1:");
    let c = p.creds("mc");
    let env = p.env_json(&["--reveal"], &[]);
    assert_eq!(env["MEMCACHE_URL"], format!("127.0.0.1:{}", c.port()));
    assert_eq!(
        memcached(&c.host(), c.port(), "set greeting 0 0 5\r\nhello\r\n"),
        "STORED\r\n"
    );
    assert_eq!(
        memcached(&c.host(), c.port(), "get greeting\r\n"),
        "VALUE greeting 0 5\r\nhello\r\nEND\r\n"
    );
    let pid = p.live_pid("mc");

    stop_gone(&p, "mc", "memcached", "memcached", pid);

    p.start().stderr_has("mc (memcached) ready");
    let pid2 = p.live_pid("mc");
    assert_ne!(pid, pid2, "not restarted");
    assert!(memcached(&c.host(), c.port(), "version\r\n").starts_with("VERSION "));
    // A new process: the cache starts empty.
    assert_eq!(
        memcached(&c.host(), c.port(), "get greeting\r\n"),
        "END\r\n"
    );
}

// ---------------------------------------------------------------------------------------------
// 2. kill -9 and recovery
// ---------------------------------------------------------------------------------------------

/// kill -9 the server of `name`; `services` must call it crashed, and `services start` must
/// bring it back, saying the earlier run's server is gone.
#[track_caller]
fn crash_and_recover(p: &Project, name: &str) {
    let pid = p.live_pid(name);
    kill9(pid);
    assert_dead("the server", pid, SHORT, "kill -9");
    let line = p.list_line(name);
    assert!(line.contains("crashed"), "after kill -9: {line}");

    let r = p.start();
    r.stderr_has(&format!("the server of an earlier run (pid {pid}) is gone"))
        .stderr_has(&format!("{name} ("));
    let new = p.live_pid(name);
    assert_ne!(new, pid);
    assert!(p.list_line(name).contains("running"));
    assert_eq!(
        server_pids(&p.root(name)),
        vec![new],
        "exactly the recorded server should run for {name}"
    );
}

#[test]
fn postgresql_recovers_from_kill_9_with_committed_rows() {
    if !need(&["postgresql"]) {
        return;
    }
    let p = Project::new("pgcrash", &[("pg", "postgresql")]);
    p.start();
    let c = p.creds("pg");
    psql(
        &c,
        "CREATE TABLE t (v int); INSERT INTO t SELECT generate_series(1, 1000);",
    )
    .unwrap();
    psql(&c, "INSERT INTO t VALUES (424242)").unwrap();
    crash_and_recover(&p, "pg");
    assert_eq!(psql(&c, "SELECT count(*) FROM t").unwrap(), "1001");
    assert_eq!(
        psql(&c, "SELECT v FROM t WHERE v = 424242").unwrap(),
        "424242"
    );
    // And it still takes writes.
    psql(&c, "INSERT INTO t VALUES (7)").unwrap();
}

#[test]
fn mysql_recovers_from_kill_9_with_committed_rows() {
    if !need(&["mysql"]) {
        return;
    }
    let _serial = mariadb_serial();
    let p = Project::new("mycrash", &[("my", "mysql")]);
    p.start();
    let c = p.creds("my");
    mysql(
        &c,
        "CREATE TABLE t (v INT) ENGINE=InnoDB; INSERT INTO t VALUES (1),(2),(3); INSERT INTO t VALUES (424242);",
    )
    .unwrap();
    crash_and_recover(&p, "my");
    assert_eq!(mysql(&c, "SELECT count(*) FROM t").unwrap(), "4");
    assert_eq!(
        mysql(&c, "SELECT v FROM t WHERE v = 424242").unwrap(),
        "424242"
    );
    mysql(&c, "INSERT INTO t VALUES (7)").unwrap();
}

#[test]
fn redis_and_memcached_recover_from_kill_9() {
    if !need(&["redis", "memcached"]) {
        return;
    }
    let p = Project::new("kvcrash", &[("rd", "redis"), ("mc", "memcached")]);
    p.start();
    let c = p.creds("rd");
    let pw = c.get("password");
    assert_eq!(redis(&c, &pw, &["SET", "before-crash", "yes"]), "OK");
    crash_and_recover(&p, "rd");
    // The append-only file is written before redis answers; a kill -9 does not lose it.
    assert_eq!(redis(&c, &pw, &["GET", "before-crash"]), "yes");

    let m = p.creds("mc");
    crash_and_recover(&p, "mc");
    assert!(memcached(&m.host(), m.port(), "version\r\n").starts_with("VERSION "));
}

// ---------------------------------------------------------------------------------------------
// 3. As root: an unprivileged server user, private data, a project under a 0700 directory
// ---------------------------------------------------------------------------------------------

#[test]
fn as_root_servers_run_unprivileged_with_private_data_even_in_a_0700_directory() {
    if !is_root() {
        skip(
            "as_root_servers_run_unprivileged_with_private_data_even_in_a_0700_directory: not running as root (id -u is not 0)",
        );
        return;
    }
    if !need(&["postgresql", "mysql"]) {
        return;
    }
    let _serial = mariadb_serial();
    let parent = tempfile::Builder::new()
        .prefix("stackato-local-private-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(parent.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let p = Project::inside(parent, "rootapp", &[("pg", "postgresql"), ("my", "mysql")]);
    assert_eq!(mode(p.dir.parent().unwrap()), 0o700);

    p.start();
    for (name, program) in [("pg", "postgres"), ("my", "mariadbd")] {
        let pid = p.live_pid(name);
        let cmdline = cmdline(pid);
        assert!(
            cmdline.contains(program) || (program == "mariadbd" && cmdline.contains("mysqld")),
            "{name}: pid {pid} runs {cmdline:?}"
        );
        let (ruid, euid) = uids_of(pid);
        assert_ne!(ruid, 0, "{name}: {program} runs as root (real uid)");
        assert_ne!(euid, 0, "{name}: {program} runs as root (effective uid)");
        let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(euid))
            .ok()
            .flatten()
            .map(|u| u.name)
            .unwrap_or_default();
        assert!(
            user == "stackato-local" || user == "nobody",
            "{name}: runs as {user:?} (uid {euid})"
        );
        // Every process of the server (postgres forks helpers) is unprivileged.
        for child in all_pids(&p.root(name)) {
            assert_ne!(uids_of(child).1, 0, "{name}: process {child} runs as root");
        }

        // The data: outside the 0700 project, in a 0700 directory owned by that user.
        let link = p.base(name).join("data");
        let data = std::fs::read_link(&link)
            .unwrap_or_else(|e| panic!("{}: not a link ({e})", link.display()));
        assert!(
            data.starts_with(SYSTEM_ROOT),
            "{name}: data in {}",
            data.display()
        );
        assert!(!data.starts_with(&p.dir));
        for dir in [data.as_path(), data.parent().unwrap()] {
            let md = std::fs::metadata(dir).unwrap();
            assert_eq!(
                md.permissions().mode() & 0o777,
                0o700,
                "{name}: {} is not 0700",
                dir.display()
            );
            assert_eq!(
                md.uid(),
                euid,
                "{name}: {} not owned by {user}",
                dir.display()
            );
        }
    }
    // And they work, through the credentials.
    let c = p.creds("pg");
    psql(&c, "CREATE TABLE t (v int); INSERT INTO t VALUES (1)").unwrap();
    assert_eq!(psql(&c, "SELECT v FROM t").unwrap(), "1");
    let m = p.creds("my");
    mysql(&m, "CREATE TABLE t (v INT); INSERT INTO t VALUES (1)").unwrap();
    assert_eq!(mysql(&m, "SELECT v FROM t").unwrap(), "1");
    // Logs and pid files stay in the project, root's.
    for name in ["pg", "my"] {
        let log = p.base(name).join("server.log");
        assert_eq!(mode(&log), 0o600);
        assert_eq!(std::fs::metadata(&log).unwrap().uid(), 0);
    }
}

/// The 0700 case should also be quiet: nothing the server user cannot do is shown.
#[test]
fn as_root_a_project_in_a_0700_directory_starts_without_permission_errors() {
    if !is_root() {
        skip(
            "as_root_a_project_in_a_0700_directory_starts_without_permission_errors: not running as root",
        );
        return;
    }
    if !need(&["postgresql"]) {
        return;
    }
    let parent = tempfile::Builder::new()
        .prefix("stackato-local-private-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(parent.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let p = Project::inside(parent, "quiet0700", &[("pg", "postgresql")]);
    p.start()
        .stderr_lacks("Permission denied")
        .stderr_lacks("could not change directory");
}

// ---------------------------------------------------------------------------------------------
// 4. Security
// ---------------------------------------------------------------------------------------------

const ALL_FOUR: &[(&str, &str)] = &[
    ("pg", "postgresql"),
    ("my", "mysql"),
    ("rd", "redis"),
    ("mc", "memcached"),
];

#[test]
fn servers_listen_on_loopback_only_with_random_private_credentials() {
    if !need(&["postgresql", "mysql", "redis", "memcached"]) {
        return;
    }
    let _serial = mariadb_serial();
    let a = Project::new("secapp", ALL_FOUR);
    a.start();
    let env = a.env_json(&["--reveal"], &[]);
    let creds: Vec<(&str, Creds)> = ALL_FOUR
        .iter()
        .map(|(n, _)| (*n, creds_in(&env, n).unwrap()))
        .collect();

    // Loopback only, also in what is advertised.
    for (name, c) in &creds {
        assert_eq!(c.host(), "127.0.0.1", "{name}");
        assert_loopback_only(name, c.port());
    }

    // Passwords are needed, and are not on any server's command line.
    let (_, pg) = &creds[0];
    let err = psql(&pg.with_password("wrong"), "SELECT 1").unwrap_err();
    assert!(err.contains("password authentication failed"), "{err}");
    let (_, my) = &creds[1];
    let err = mysql(&my.with_password("wrong"), "SELECT 1").unwrap_err();
    assert!(err.contains("Access denied"), "{err}");
    let (_, rd) = &creds[2];
    let out = redis(rd, "", &["GET", "x"]);
    assert!(out.contains("NOAUTH"), "redis without a password: {out}");
    for (name, c) in &creds {
        let pw = c.get("password");
        for pid in all_pids(&a.root(name)) {
            assert!(
                !cmdline(pid).contains(&pw),
                "{name}: the password is on the command line of pid {pid}"
            );
        }
    }

    // State files: the dir 0700, every file 0600, service dirs 0700.
    let state = a.dir.join(".stackato-local");
    assert_eq!(mode(&state), 0o700, ".stackato-local");
    for (name, _) in ALL_FOUR {
        assert_eq!(mode(&a.base(name)), 0o700, "{name}");
        assert_eq!(mode(&a.root(name)), 0o700, "{name}");
        assert_eq!(mode(&a.root(name).join("run")), 0o700, "{name}");
    }
    let mut files = files_below(&state);
    files.extend(files_below(&a.root("rd").join("run")));
    assert!(files.iter().any(|f| f.ends_with("services.json")));
    assert!(files.iter().any(|f| f.ends_with("redis.conf")));
    for f in &files {
        assert_eq!(mode(f) & 0o077, 0, "{} is readable by others", f.display());
    }
    let reg = std::fs::read_to_string(state.join("services.json")).unwrap();
    assert_eq!(mode(&state.join("services.json")), 0o600);
    assert!(reg.contains(&creds[0].1.get("password")));

    // `env` masks every password unless --reveal, in every format.
    for args in [
        &["env"][..],
        &["env", "--format", "json"][..],
        &["env", "--format", "dotenv"][..],
    ] {
        let r = a.run(args);
        r.code(0);
        assert!(r.stdout.contains(MASK), "no mask in\n{}", r.dump());
        for (name, c) in &creds {
            let pw = c.get("password");
            assert!(
                !r.stdout.contains(&pw) && !r.stderr.contains(&pw),
                "{args:?} shows the password of {name}\n{}",
                r.dump()
            );
        }
    }

    // Another project with the same manifest gets other credentials.
    let b = Project::new("secapp", ALL_FOUR);
    let env_b = b.env_json(&["--reveal"], &[]);
    for (name, ca) in &creds {
        let cb = creds_in(&env_b, name).unwrap();
        let (pa, pb) = (ca.get("password"), cb.get("password"));
        assert!(pa.len() >= 16, "{name}: short password {pa:?}");
        assert_ne!(pa, pb, "{name}: same password in two projects");
        if ca.0.contains_key("user") {
            assert_ne!(ca.get("user"), cb.get("user"), "{name}: same user");
        }
        assert_ne!(ca.get("name"), cb.get("name"), "{name}: same name");
    }
    // …and keeps them (they are generated once).
    assert_eq!(
        a.env_json(&["--reveal"], &[])["VCAP_SERVICES"],
        env["VCAP_SERVICES"]
    );
}

// ---------------------------------------------------------------------------------------------
// 5. A remembered port taken by another program
// ---------------------------------------------------------------------------------------------

#[test]
fn a_taken_port_moves_the_service_and_the_environment_follows() {
    if !need(&["postgresql", "redis"]) {
        return;
    }
    let p = Project::new("portapp", &[("pg", "postgresql"), ("rd", "redis")]);
    p.start();
    let (pg, rd) = (p.creds("pg"), p.creds("rd"));
    psql(&pg, "CREATE TABLE t (v int); INSERT INTO t VALUES (5)").unwrap();
    assert_eq!(redis(&rd, &rd.get("password"), &["SET", "k", "v"]), "OK");
    p.stop();

    let squat_pg = TcpListener::bind((Ipv4Addr::LOCALHOST, pg.port())).expect("bind pg's port");
    let squat_rd = TcpListener::bind((Ipv4Addr::LOCALHOST, rd.port())).expect("bind rd's port");
    let r = p.start();
    for (name, old) in [("pg", pg.port()), ("rd", rd.port())] {
        let line = lines_with(&r.stderr, &format!("port {old} is taken"));
        assert_eq!(line.len(), 1, "no port message for {name}\n{}", r.dump());
        assert!(
            line[0].starts_with(&format!("services: {name}:")),
            "{}",
            line[0]
        );
        assert!(line[0].contains("now on port"), "{}", line[0]);
    }

    let env = p.env_json(&["--reveal"], &[]);
    let (pg2, rd2) = (creds_in(&env, "pg").unwrap(), creds_in(&env, "rd").unwrap());
    assert_ne!(pg2.port(), pg.port());
    assert_ne!(rd2.port(), rd.port());
    assert!(
        r.stderr.contains(&format!("now on port {}", pg2.port())),
        "{}",
        r.dump()
    );
    assert!(
        r.stderr.contains(&format!("now on port {}", rd2.port())),
        "{}",
        r.dump()
    );
    assert_eq!(
        pg2.get("password"),
        pg.get("password"),
        "only the port moves"
    );
    assert!(
        env["POSTGRESQL_URL"].contains(&format!("@127.0.0.1:{}/", pg2.port())),
        "{}",
        env["POSTGRESQL_URL"]
    );
    assert!(
        env["REDIS_URL"].ends_with(&format!("@127.0.0.1:{}", rd2.port())),
        "{}",
        env["REDIS_URL"]
    );
    assert!(p.list_line("pg").contains(&pg2.port().to_string()));
    assert_loopback_only("pg", pg2.port());
    assert_loopback_only("rd", rd2.port());
    // The same servers and data, on the new ports.
    assert_eq!(psql(&pg2, "SELECT v FROM t").unwrap(), "5");
    assert_eq!(
        psql_url(&env["POSTGRESQL_URL"], "SELECT v FROM t").unwrap(),
        "5"
    );
    assert_eq!(redis(&rd2, &rd2.get("password"), &["GET", "k"]), "v");
    assert_eq!(redis_url(&env["REDIS_URL"], &["GET", "k"]), "v");

    // The new port is remembered: free the old ones, restart, nothing moves.
    drop((squat_pg, squat_rd));
    p.stop();
    p.start().stderr_lacks("is taken");
    assert_eq!(p.creds("pg").port(), pg2.port());
    assert_eq!(p.creds("rd").port(), rd2.port());
}

// ---------------------------------------------------------------------------------------------
// 6. The sqlite fallback, and missing servers
// ---------------------------------------------------------------------------------------------

const HIDE_SERVERS: (&str, &str) = ("STACKATO_LOCAL_SERVER_PATH", "");

#[test]
fn without_servers_postgresql_falls_back_to_sqlite_and_redis_is_an_error() {
    let p = Project::new("sqapp", &[("db", "postgresql")]);
    let r = p.run_env(&["services", "start"], &[HIDE_SERVERS]);
    r.code(0);
    let says = lines_with(&r.stderr, "using sqlite");
    assert_eq!(says.len(), 1, "one line about sqlite\n{}", r.dump());
    assert!(says[0].contains("db (postgresql)"), "{}", says[0]);
    assert!(says[0].contains("not installed"), "{}", says[0]);
    assert!(
        says[0].contains("apt-get install postgresql"),
        "{}",
        says[0]
    );
    assert!(
        p.list_line("db").contains("stopped"),
        "without the hidden path"
    );
    let listed = p.run_env(&["services"], &[HIDE_SERVERS]);
    listed.code(0).stdout_has("sqlite fallback");

    // Its variables are left out by default.
    let env = p.env_json(&["--reveal"], &[HIDE_SERVERS]);
    for k in ["DATABASE_URL", "POSTGRESQL_URL", "JDBC_DATABASE_URL"] {
        assert!(!env.contains_key(k), "{k} set: {env:#?}");
    }
    assert_eq!(env["VCAP_SERVICES"], "{}");
    // …or given as a sqlite URL to the file.
    let env = p.env_json(&["--reveal", "--sqlite-env", "url"], &[HIDE_SERVERS]);
    let url = &env["DATABASE_URL"];
    let file = p.base("db").join("sqlite.db");
    assert!(url.starts_with("sqlite:///"), "{url}");
    assert!(
        url.ends_with(
            &file
                .display()
                .to_string()
                .trim_start_matches('/')
                .to_string()
        ),
        "{url} does not name {}",
        file.display()
    );
    assert!(!env.contains_key("POSTGRESQL_URL"));

    // --db native insists on the server.
    let r = p.run_env(&["services", "start", "--db", "native"], &[HIDE_SERVERS]);
    r.code(5)
        .stderr_has("postgres")
        .stderr_has("apt-get install postgresql")
        .stderr_has("--skip-service db");

    // A missing redis is an error naming the package, unless skipped.
    let q = Project::new("rdmiss", &[("cache", "redis"), ("fs", "filesystem")]);
    let r = q.run_env(&["services", "start"], &[HIDE_SERVERS]);
    r.code(5)
        .stderr_has("redis-server")
        .stderr_has("apt-get install redis-server")
        .stderr_has("--skip-service cache");
    let r = q.run_env(
        &["services", "start", "--skip-service", "cache"],
        &[HIDE_SERVERS],
    );
    r.code(0).stderr_has("fs (filesystem) ready");
    let env = q.env_json(&["--skip-service", "cache", "--reveal"], &[HIDE_SERVERS]);
    assert!(!env.contains_key("REDIS_URL"), "{env:#?}");
    assert!(!env["VCAP_SERVICES"].contains("\"cache\""), "{env:#?}");
}

/// README ("Fallback") and `--sqlite-env`'s help promise `DATABASE_URL=sqlite:////abs/path.db`
/// (four slashes: an absolute path for SQLAlchemy, dj-database-url, …).
#[test]
fn sqlite_url_is_absolute_as_documented() {
    let p = Project::new("sqabs", &[("db", "postgresql")]);
    let env = p.env_json(&["--reveal", "--sqlite-env", "url"], &[HIDE_SERVERS]);
    let file = p.base("db").join("sqlite.db");
    assert_eq!(env["DATABASE_URL"], format!("sqlite:///{}", file.display()));
}

/// `stackato-local services --help` shows `stackato-local services --db sqlite`, which works.
#[test]
fn db_flag_works_as_documented() {
    let p = Project::new("dbflag", &[("db", "postgresql")]);
    let help = p.run(&["services", "--help"]);
    help.code(0)
        .stdout_has("stackato-local services --db sqlite");
    p.run(&["services", "--db", "sqlite"])
        .code(0)
        .stdout_has("sqlite fallback");
}

// ---------------------------------------------------------------------------------------------
// 7. A server that cannot start
// ---------------------------------------------------------------------------------------------

#[test]
fn a_server_that_cannot_start_fails_with_its_log_tail() {
    if !need(&["postgresql"]) {
        return;
    }
    let p = Project::new("badconf", &[("pg", "postgresql")]);
    p.start();
    p.stop();
    let conf = p.base("pg").join("data").join("postgresql.conf");
    let original = std::fs::read(&conf).unwrap();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&conf)
        .unwrap();
    f.write_all(b"\nthis is = not = valid @@@ configuration\n")
        .unwrap();
    drop(f);

    let r = p.run(&["services", "start", "--service-timeout", "20"]);
    r.code(5)
        .stderr_has("service \"pg\" (postgresql)")
        .stderr_has("last lines of")
        .stderr_has("server.log")
        // The server's own words, from its log.
        .stderr_has("postgresql.conf")
        .stderr_has("syntax error")
        // A server that exits at once is seen exiting, not waited for until the timeout.
        .stderr_has("exited while starting")
        .stderr_lacks("did not answer within");
    assert!(p.pid("pg").is_none(), "server.pid left by a failed start");
    assert!(server_pids(&p.root("pg")).is_empty());
    assert!(p.list_line("pg").contains("stopped"));
    p.run(&["services", "logs", "pg"])
        .code(0)
        .stdout_has("syntax error");

    // Repaired, it starts again with its data.
    std::fs::write(&conf, original).unwrap();
    p.start().stderr_has("pg (postgresql) ready");
    psql(&p.creds("pg"), "SELECT 1").unwrap();
}

// ---------------------------------------------------------------------------------------------
// 8. Two starts at once
// ---------------------------------------------------------------------------------------------

#[test]
fn two_starts_at_once_start_each_server_once() {
    if !need(&["postgresql", "redis", "memcached"]) {
        return;
    }
    let services = [("pg", "postgresql"), ("rd", "redis"), ("mc", "memcached")];
    let p = Project::new("raceapp", &services);
    let spawn = || {
        cmd(&p.dir)
            .args(["services", "start"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn")
    };
    let (a, b) = (spawn(), spawn());
    let runs: Vec<Run> = [a, b]
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().expect("wait");
            Run::from_output(vec!["services".into(), "start".into()], out)
        })
        .collect();
    for r in &runs {
        r.code(0);
    }
    let all = format!("{}{}", runs[0].stderr, runs[1].stderr);
    for (name, kind) in services {
        assert_eq!(
            lines_with(&all, &format!("{name} ({kind}) ready")).len(),
            2,
            "both commands report {name}\n{all}"
        );
        assert_eq!(
            lines_with(&all, "data directory initialised")
                .iter()
                .filter(|l| l.contains(&format!("{name} (")))
                .count(),
            usize::from(kind != "memcached"),
            "{name} initialised once\n{all}"
        );
        let pid = p.live_pid(name);
        assert_eq!(
            server_pids(&p.root(name)),
            vec![pid],
            "{name}: one server, the recorded one\n{all}"
        );
    }
    // One set of credentials, and the server answers to it.
    psql(&p.creds("pg"), "SELECT 1").unwrap();
}

/// Two projects (two developers' checkouts, two CI jobs) starting MariaDB at the same time.
/// MariaDB removes every `#sql*` file in its tmpdir at startup; with the default shared
/// `/tmp`, one instance's bootstrap loses its temporary tables to the other's startup:
/// `[Warning] Could not remove temporary table: '/tmp/#sql-temptable-…', error: 2`,
/// `ERROR: 1051 Unknown table 'mysql.tmp_user_sys'`, and `services start` exits 5.
#[test]
fn mariadb_fresh_projects_start_in_parallel() {
    if !need(&["mysql"]) {
        return;
    }
    let _serial = mariadb_serial();
    // A race: a few rounds, so that it shows reliably.
    for round in 0..3 {
        let projects: Vec<Project> = (0..5)
            .map(|i| Project::new(&format!("par{round}x{i}"), &[("my", "mysql")]))
            .collect();
        let children: Vec<_> = projects
            .iter()
            .map(|p| {
                cmd(&p.dir)
                    .args(["services", "start"])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("spawn")
            })
            .collect();
        for c in children {
            let out = c.wait_with_output().expect("wait");
            Run::from_output(vec!["services".into(), "start".into()], out).code(0);
        }
        for p in &projects {
            mysql(&p.creds("my"), "SELECT 1").unwrap();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 9. exec
// ---------------------------------------------------------------------------------------------

#[test]
fn exec_passes_exit_codes_runs_in_the_app_dir_and_stops_what_it_started() {
    if !need(&["redis"]) {
        return;
    }
    let p = Project::new("execapp", &[("rd", "redis")]);
    let cli = program("redis-cli");

    // Services are up while the command runs, with the advertised URL.
    let script = format!(
        r#"pw=${{REDIS_URL#redis://:}}; pw=${{pw%@*}}; hp=${{REDIS_URL##*@}}
        {} -h "${{hp%:*}}" -p "${{hp##*:}}" -a "$pw" --no-auth-warning ping; pwd"#,
        cli.display()
    );
    let r = p.run(&["exec", "--", "sh", "-c", &script]);
    r.code(0).stderr_has("rd (redis) ready");
    let out: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(out, vec!["PONG", p.dir.to_str().unwrap()], "{}", r.dump());
    // …and stopped afterwards, since exec started them.
    r.stderr_has("rd (redis) stopped");
    assert!(p.pid("rd").is_none());
    assert!(server_pids(&p.root("rd")).is_empty());

    // Exit codes pass through, also when the command fails.
    p.run(&["exec", "--", "sh", "-c", "exit 7"]).code(7);
    assert!(
        p.pid("rd").is_none(),
        "left running after a failing command"
    );
    p.run(&["exec", "--", "sh", "-c", "kill -TERM $$"])
        .code(143);
    let r = p.run(&["exec", "--", "no-such-program-stackato-local"]);
    r.code(127);

    // --keep-services leaves what it started running.
    p.run(&["exec", "--keep-services", "--", "true"]).code(0);
    let kept = p.live_pid("rd");
    p.stop();
    assert!(!alive(kept));

    // A service that was already running is left running, the same server.
    p.start();
    let pid = p.live_pid("rd");
    let r = p.run(&["exec", "--", "sh", "-c", "exit 3"]);
    r.code(3)
        .stderr_has("already running")
        .stderr_lacks("stopped");
    assert_eq!(p.live_pid("rd"), pid);
    let c = p.creds("rd");
    assert_eq!(redis(&c, &c.get("password"), &["PING"]), "PONG");
}

/// README: exec's "services it had to start are stopped afterwards". When a later service
/// fails to start, the earlier ones exec started are left running.
#[test]
fn exec_stops_what_it_started_when_a_later_service_fails() {
    if !need(&["redis", "postgresql"]) {
        return;
    }
    let p = Project::new("execfail", &[("rd", "redis"), ("pg", "postgresql")]);
    p.start();
    p.stop();
    let conf = p.base("pg").join("data").join("postgresql.conf");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&conf)
        .unwrap();
    f.write_all(b"\nnot = valid = at all\n").unwrap();
    drop(f);

    let r = p.run(&["exec", "--", "true"]);
    r.code(5).stderr_has("rd (redis) ready");
    assert!(
        server_pids(&p.root("rd")).is_empty(),
        "redis, started by this exec, still runs\n{}\n{}",
        r.dump(),
        p.list_line("rd")
    );
}

// ---------------------------------------------------------------------------------------------
// 10. logs and reset
// ---------------------------------------------------------------------------------------------

#[test]
fn logs_show_the_server_log_and_reset_deletes_data_and_credentials() {
    if !need(&["postgresql"]) {
        return;
    }
    let p = Project::new("resetapp", &[("pg", "postgresql")]);
    p.run(&["services", "logs", "pg"])
        .code(0)
        .stderr_has("no log yet");
    p.run(&["services", "logs", "nope"]).code(64);

    p.start();
    let old = p.creds("pg");
    psql(&old, "CREATE TABLE t (v int); INSERT INTO t VALUES (1)").unwrap();
    let r = p.run(&["services", "logs", "pg"]);
    r.code(0)
        .stdout_has("database system is ready to accept connections");
    let r = p.run(&["services", "logs", "pg", "-n", "2"]);
    r.code(0);
    assert_eq!(r.stdout.trim_end().lines().count(), 2, "{}", r.dump());

    // No --yes and no terminal: refuse, touch nothing.
    let r = p.run(&["services", "reset", "pg"]);
    r.code(64).stderr_has("--yes");
    assert_eq!(psql(&old, "SELECT v FROM t").unwrap(), "1");
    p.run(&["services", "reset", "nope", "--yes"]).code(64);

    let root = p.root("pg");
    let r = p.run(&["services", "reset", "pg", "--yes"]);
    r.code(0).stderr_has("data and credentials deleted");
    assert!(!root.exists(), "{} still exists", root.display());
    assert!(!p.base("pg").exists());
    assert!(
        psql(&old, "SELECT 1").is_err(),
        "still answering after reset"
    );

    p.start().stderr_has("data directory initialised");
    let new = p.creds("pg");
    assert_ne!(new.get("password"), old.get("password"));
    assert_ne!(new.get("user"), old.get("user"));
    assert_eq!(
        psql(&new, "SELECT to_regclass('public.t') IS NULL").unwrap(),
        "t",
        "the table survived the reset"
    );
    let err = psql(&new.with_password(&old.get("password")), "SELECT 1").unwrap_err();
    assert!(err.contains("password authentication failed"), "{err}");
}

/// A healthy start should not leave errors about missing roles in the server log that
/// `services logs` shows (FATAL "the database system is starting up" from probing during
/// startup is expected and not checked).
#[test]
fn a_healthy_postgres_start_logs_no_missing_role_errors() {
    if !need(&["postgresql"]) {
        return;
    }
    let p = Project::new("quietlog", &[("pg", "postgresql")]);
    p.start();
    let r = p.run(&["services", "logs", "pg"]);
    r.code(0)
        .stdout_has("database system is ready to accept connections");
    let bad = lines_with(&r.stdout, "does not exist");
    assert!(bad.is_empty(), "{bad:#?}");
}
