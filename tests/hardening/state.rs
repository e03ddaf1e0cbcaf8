//! Hardening tests: the project's state directory as untrusted input, and service faults
//! (issue 11, items 10, 11, 12, 16, 19). A repository can ship `.stackato-local` (a symlink,
//! links inside it, a planted `server.pid`, a registry naming `../../victim`); none of it may
//! make the tool change, delete or signal anything outside the project. A first initialisation
//! killed half-way must not leave a service that never starts again, and `services reset` must
//! not delete the data of a service a `run` is using.
//!
//! Tests that need a server print a loud SKIP when it is not installed, and fail instead under
//! `STACKATO_LOCAL_REQUIRE_SERVICES=1` (see `common::require`).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::procs::{alive, cmdline, kill9, pids, procs_under, read_pid};
use crate::common::project::{Project, mariadb_serial};
use crate::common::*;

/// A directory outside the project that a hostile repository aims at: its mode, owner and
/// every file's content, to compare before and after.
struct Victim {
    dir: PathBuf,
}

#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    mode: u32,
    uid: u32,
    gid: u32,
    files: Vec<(String, Vec<u8>)>,
}

impl Victim {
    /// `<parent>/victim`, mode 0755, holding `precious.txt`.
    fn at(parent: &Path) -> Victim {
        let dir = parent.join("victim");
        std::fs::create_dir_all(&dir).expect("create the victim dir");
        std::fs::write(dir.join("precious.txt"), "do not touch\n").expect("write victim file");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
            .expect("chmod victim");
        Victim { dir }
    }

    fn snapshot(&self) -> Snapshot {
        let md = std::fs::symlink_metadata(&self.dir)
            .unwrap_or_else(|e| panic!("the victim dir {} is gone: {e}", self.dir.display()));
        let mut files = Vec::new();
        let mut stack = vec![self.dir.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).expect("read victim dir").flatten() {
                let p = e.path();
                let rel = p
                    .strip_prefix(&self.dir)
                    .unwrap_or(&p)
                    .display()
                    .to_string();
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    files.push((format!("{rel}/"), Vec::new()));
                    stack.push(p);
                } else {
                    files.push((rel, std::fs::read(&p).unwrap_or_default()));
                }
            }
        }
        files.sort();
        Snapshot {
            mode: md.permissions().mode() & 0o7777,
            uid: md.uid(),
            gid: md.gid(),
            files,
        }
    }
}

/// Write `.stackato-local/services.json` with one record (and `services/`, there once any
/// service has started, through which `..` resolves).
fn plant_record(app: &Path, name: &str, kind: &str, port: Option<u16>) {
    std::fs::create_dir_all(app.join(".stackato-local/services")).expect("create services/");
    let reg = serde_json::json!({
        "services": {
            name: {"name": name, "type": kind, "port": port, "credentials": {}}
        }
    });
    write(
        app,
        ".stackato-local/services.json",
        serde_json::to_string_pretty(&reg).unwrap().as_bytes(),
    );
}

// ---------------------------------------------------------------------------------------------
// 10. Service names that are paths
// ---------------------------------------------------------------------------------------------

/// A service named `../../../victim` would be `<project>/../victim` under the old layout
/// (`.stackato-local/services/<name>`).
const ESCAPE: &str = "../../../victim";

#[test]
fn a_service_named_like_a_path_never_reaches_outside_the_project() {
    let tmp = app(&[]);
    let root = canon(tmp.path());
    let victim = Victim::at(&root);
    let before = victim.snapshot();
    let p = Project::at(
        &root,
        &[(
            "stackato.yml",
            &format!("name: x\nmem: 64M\nservices:\n  \"{ESCAPE}\": filesystem\n"),
        )],
    )
    .with_services(&[ESCAPE]);
    // Today's validator may refuse the name (exit 2, nothing done); otherwise the service's
    // directory is inside the state dir.
    let start = p.cmd(&["services", "start"]);
    assert!(
        matches!(start.code, Some(0) | Some(2)),
        "unexpected exit\n{}",
        start.dump()
    );
    if start.code == Some(0) {
        let env = p.cmd(&["env", "--format", "json"]);
        let text = format!("{}{}", env.stdout, env.stderr);
        assert!(
            !text.contains(&victim.dir.display().to_string()),
            "the filesystem dir points at the victim\n{}",
            env.dump()
        );
        let encoded = p
            .state("services")
            .join("%2E.%2F..%2F..%2Fvictim")
            .join("fs");
        assert!(
            encoded.is_dir(),
            "no {}\n{}",
            encoded.display(),
            start.dump()
        );
    }
    let reset = p.cmd(&["services", "reset", ESCAPE, "--yes"]);
    assert!(reset.code.is_some(), "{}", reset.dump());
    assert_eq!(
        victim.snapshot(),
        before,
        "services start/reset changed the victim"
    );
}

#[test]
fn services_reset_of_a_planted_record_named_like_a_path_deletes_nothing_outside() {
    // The registry is the project's file: the name in it need not pass the manifest's
    // validator. `reset` works from the record alone.
    let tmp = app(&[]);
    let root = canon(tmp.path());
    let victim = Victim::at(&root);
    let before = victim.snapshot();
    let p = Project::at(&root, &[("stackato.yml", "name: x\nmem: 64M\n")]);
    for kind in ["filesystem", "redis", "postgresql"] {
        plant_record(&p.app, ESCAPE, kind, Some(1));
        let r = p.cmd(&["services", "reset", ESCAPE, "--yes"]);
        r.code(0);
        assert_eq!(
            victim.snapshot(),
            before,
            "reset of a {kind} record deleted or changed the victim\n{}",
            r.dump()
        );
    }
}

#[test]
fn a_planted_filesystem_directory_is_not_exported() {
    // `services.json` is the project's: a filesystem record whose `dir` names a directory
    // outside does not make the app's STACKATO_FILESYSTEM point there.
    let tmp = app(&[]);
    let root = canon(tmp.path());
    let victim = Victim::at(&root);
    let p = Project::at(&root, &[("stackato.yml", FS_APP)]);
    let reg = serde_json::json!({"services": {"files": {
        "name": "files", "type": "filesystem", "port": null,
        "credentials": {"dir": victim.dir.display().to_string()}
    }}});
    write(
        &p.app,
        ".stackato-local/services.json",
        reg.to_string().as_bytes(),
    );
    let r = p.cmd(&["env", "--format", "json"]);
    r.code(0);
    let env = r.json();
    let want = p.state("services/files/fs").display().to_string();
    assert_eq!(
        env["STACKATO_FILESYSTEM"].as_str(),
        Some(want.as_str()),
        "{}",
        r.dump()
    );
}

#[test]
fn a_redis_service_named_like_a_path_never_chmods_or_chowns_outside() {
    if !require_all(&["redis-server", "redis-cli"]) {
        return;
    }
    let tmp = app(&[]);
    let root = canon(tmp.path());
    let victim = Victim::at(&root);
    let before = victim.snapshot();
    let p = Project::at(
        &root,
        &[(
            "stackato.yml",
            &format!("name: x\nmem: 64M\nservices:\n  \"{ESCAPE}\": redis\n"),
        )],
    )
    .with_services(&[ESCAPE]);
    let start = p.cmd(&["services", "start"]);
    assert!(
        matches!(start.code, Some(0) | Some(2)),
        "unexpected exit\n{}",
        start.dump()
    );
    assert_eq!(
        victim.snapshot(),
        before,
        "services start changed the victim"
    );
    let stop = p.cmd(&["services", "stop"]);
    assert!(stop.code.is_some(), "{}", stop.dump());
    let reset = p.cmd(&["services", "reset", ESCAPE, "--yes"]);
    assert!(reset.code.is_some(), "{}", reset.dump());
    assert_eq!(
        victim.snapshot(),
        before,
        "services reset changed the victim"
    );
    // Nothing of it escaped /var/lib/stackato-local either.
    assert!(!Path::new("/var/victim").exists());
    assert!(!Path::new("/var/lib/victim").exists());
}

#[test]
fn unusual_service_names_get_their_own_directory_inside_the_state_dir() {
    // Names the validator lets through (spaces, a leading dot, `%`) are encoded, and a plain
    // name stays as it is (data of earlier versions is found).
    let p = Project::new(&[(
        "stackato.yml",
        "name: x\nmem: 64M\nservices:\n  \"Bulletin Board\": filesystem\n  \".hidden\": filesystem\n  \"50%\": filesystem\n  plain_name-1.x: filesystem\n",
    )]);
    let r = p.cmd(&["services", "start"]);
    if r.code == Some(2) {
        // Refused by the validator: nothing created.
        assert!(!p.state("services").exists(), "{}", r.dump());
        return;
    }
    r.code(0);
    for dir in ["Bulletin%20Board", "%2Ehidden", "50%25", "plain_name-1.x"] {
        let d = p.state("services").join(dir).join("fs");
        assert!(d.is_dir(), "no {}\n{}", d.display(), r.dump());
    }
    let entries: Vec<String> = std::fs::read_dir(p.state("services"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(entries.len(), 4, "{entries:?}");
}

// ---------------------------------------------------------------------------------------------
// 11. `.stackato-local` shipped by the repository
// ---------------------------------------------------------------------------------------------

const FS_APP: &str = "name: x\nmem: 64M\nservices:\n  files: filesystem\n";

#[test]
fn a_state_dir_shipped_as_a_symlink_is_refused_and_its_target_untouched() {
    let tmp = app(&[]);
    let root = canon(tmp.path());
    let victim = Victim::at(&root);
    let before = victim.snapshot();
    let p = Project::at(&root, &[("stackato.yml", FS_APP)]);
    std::os::unix::fs::symlink(&victim.dir, p.app.join(".stackato-local")).expect("plant the link");
    for args in [
        &["env"][..],
        &["env", "--format", "json"],
        &["services", "start"],
        &["services", "reset", "files", "--yes"],
    ] {
        let r = p.cmd(args);
        r.code(74)
            .stderr_has("refusing to use")
            .stderr_has("symbolic link");
        assert_eq!(
            victim.snapshot(),
            before,
            "`{}` changed the victim",
            args.join(" ")
        );
    }
    assert!(
        std::fs::symlink_metadata(p.app.join(".stackato-local"))
            .unwrap()
            .file_type()
            .is_symlink(),
        "the link was replaced"
    );
}

#[test]
fn links_inside_a_shipped_state_dir_are_never_followed() {
    let tmp = app(&[]);
    let root = canon(tmp.path());
    let victim = Victim::at(&root);
    let before = victim.snapshot();
    let p = Project::at(&root, &[("stackato.yml", FS_APP)]);
    std::fs::create_dir(p.app.join(".stackato-local")).unwrap();
    // `services` -> victim: refused at the top.
    std::os::unix::fs::symlink(&victim.dir, p.state("services")).unwrap();
    p.cmd(&["services", "start"])
        .code(74)
        .stderr_has("refusing to use");
    assert_eq!(victim.snapshot(), before);
    std::fs::remove_file(p.state("services")).unwrap();
    // `services/files` -> victim: refused where it is used.
    std::fs::create_dir(p.state("services")).unwrap();
    std::os::unix::fs::symlink(&victim.dir, p.state("services/files")).unwrap();
    let r = p.cmd(&["services", "start"]);
    r.code(74).stderr_has("refusing to use");
    assert_eq!(victim.snapshot(), before, "{}", r.dump());
    let r = p.cmd(&["services", "reset", "files", "--yes"]);
    assert_ne!(r.code, Some(0), "{}", r.dump());
    assert_eq!(victim.snapshot(), before, "{}", r.dump());
    std::fs::remove_file(p.state("services/files")).unwrap();
    // A lock file and the registry as links to a file outside.
    let outside = victim.dir.join("precious.txt");
    std::fs::create_dir_all(p.state("locks")).unwrap();
    let _ = std::fs::remove_file(p.state("locks/services.lock"));
    std::os::unix::fs::symlink(&outside, p.state("locks/services.lock")).unwrap();
    p.cmd(&["services", "start"])
        .code(74)
        .stderr_has("refusing to use");
    std::fs::remove_file(p.state("locks/services.lock")).unwrap();
    let _ = std::fs::remove_file(p.state("services.json"));
    std::os::unix::fs::symlink(&outside, p.state("services.json")).unwrap();
    let r = p.cmd(&["env"]);
    assert_ne!(r.code, Some(0), "{}", r.dump());
    assert_eq!(victim.snapshot(), before, "{}", r.dump());
}

#[test]
fn a_state_dir_owned_by_another_user_is_refused() {
    if !is_root() {
        skip("a_state_dir_owned_by_another_user_is_refused: needs root to chown");
        return;
    }
    let p = Project::new(&[("stackato.yml", FS_APP)]);
    let dir = p.app.join(".stackato-local");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
    let r = p.cmd(&["env"]);
    r.code(74)
        .stderr_has("refusing to use")
        .stderr_has("not to you");
    let md = std::fs::metadata(&dir).unwrap();
    assert_eq!((md.uid(), md.permissions().mode() & 0o777), (65534, 0o755));
}

// ---------------------------------------------------------------------------------------------
// 12. A planted server.pid
// ---------------------------------------------------------------------------------------------

/// A process that is not a server of this project: `sleep`, copied under the name
/// `redis-server` (so that its name alone looks right), and a plain `sleep`.
struct Decoy {
    child: std::process::Child,
}

impl Decoy {
    fn start(dir: &Path, name: &str) -> Decoy {
        let sleep = find_program("sleep").expect("sleep");
        let exe = dir.join(name);
        std::fs::copy(&sleep, &exe).expect("copy sleep");
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let child = Command::new(&exe)
            .arg("1000")
            .current_dir(dir)
            .stdin(Stdio::null())
            .spawn()
            .expect("start the decoy");
        Decoy { child }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Alive, and not a zombie (we are its parent: reap nothing until asked).
    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Decoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn plant_pid(p: &Project, name: &str, pid: i32, port: u16) {
    write(
        &p.app,
        &format!(".stackato-local/services/{name}/server.pid"),
        format!("{{\"pid\":{pid},\"port\":{port},\"kind\":\"redis\",\"started\":0}}").as_bytes(),
    );
}

#[test]
fn a_planted_server_pid_is_never_signalled() {
    if !require_all(&["redis-server", "redis-cli"]) {
        return;
    }
    let decoys = app(&[]);
    let p = Project::new(&[(
        "stackato.yml",
        "name: x\nmem: 64M\nservices:\n  cache: redis\n",
    )])
    .with_services(&["cache"]);
    p.cmd(&["services", "list"]).code(0);
    let port = p.service_port("cache");
    let mut disguised = Decoy::start(decoys.path(), "redis-server");
    let mut plain = Decoy::start(decoys.path(), "sleep");
    for (decoy_port, decoy) in [(1, &mut disguised), (port, &mut plain)] {
        // `services start` over a planted pid: the decoy is left alone, a real server starts.
        plant_pid(&p, "cache", decoy.pid(), decoy_port);
        let r = p.cmd(&["services", "start"]);
        r.code(0).stderr_has("cache (redis) ready");
        assert!(
            decoy.alive(),
            "services start signalled pid {}\n{}",
            decoy.pid(),
            r.dump()
        );
        let server = p.server_pid("cache").expect("server.pid");
        assert_ne!(server, decoy.pid());
        p.cmd(&["services", "stop"]).code(0);
        assert!(!alive(server), "the real server was not stopped");
        // `services stop` and `services reset` over a planted pid.
        plant_pid(&p, "cache", decoy.pid(), decoy_port);
        let r = p.cmd(&["services", "stop"]);
        r.code(0).stderr_has("signalled nothing");
        assert!(
            decoy.alive(),
            "services stop signalled pid {}\n{}",
            decoy.pid(),
            r.dump()
        );
        plant_pid(&p, "cache", decoy.pid(), decoy_port);
        let r = p.cmd(&["services", "reset", "cache", "--yes"]);
        r.code(0);
        assert!(
            decoy.alive(),
            "services reset signalled pid {}\n{}",
            decoy.pid(),
            r.dump()
        );
    }
}

#[test]
fn the_real_servers_pass_the_pid_check_and_are_reused_and_stopped() {
    // The other side of the check: this project's own servers, of every type, are recognised
    // (reused by the next start, stopped by `services stop`).
    if !require_all(&[
        "postgres",
        "initdb",
        "pg_isready",
        "psql",
        "mariadbd|mysqld",
        "mariadb-install-db|mysql_install_db",
        "redis-server",
        "memcached",
    ]) {
        return;
    }
    let _serial = mariadb_serial();
    let names = ["pg", "my", "rd", "mc"];
    let p = Project::new(&[(
        "stackato.yml",
        "name: x\nmem: 64M\nservices:\n  pg: postgresql\n  my: mysql\n  rd: redis\n  mc: memcached\n",
    )])
    .with_services(&names);
    p.cmd(&["services", "start"]).code(0);
    let pids: Vec<i32> = names
        .iter()
        .map(|n| p.server_pid(n).expect("server.pid"))
        .collect();
    let r = p.cmd(&["services", "start"]);
    r.code(0).stderr_lacks("not this service's server");
    for (n, pid) in names.iter().zip(&pids) {
        assert!(
            r.stderr.contains(&format!("{n} (")) && alive(*pid),
            "{n}: {}",
            r.dump()
        );
        assert_eq!(
            p.server_pid(n),
            Some(*pid),
            "{n} was not reused\n{}",
            r.dump()
        );
    }
    assert_eq!(
        r.stderr.matches("already running").count(),
        4,
        "{}",
        r.dump()
    );
    let r = p.cmd(&["services", "stop"]);
    r.code(0);
    for (n, pid) in names.iter().zip(&pids) {
        let t0 = Instant::now();
        while alive(*pid) && t0.elapsed() < SHORT {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            !alive(*pid),
            "{n} (pid {pid}) was not stopped\n{}",
            r.dump()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 16. An interrupted first initialisation
// ---------------------------------------------------------------------------------------------

fn postgres_installed() -> bool {
    require_all(&["postgres", "initdb", "pg_isready", "psql"])
}

/// Where a service keeps `data` and `run`: the `data` link's directory (as root), else the
/// service's directory in the state dir.
fn service_root(p: &Project, name: &str) -> PathBuf {
    let base = p.state(&format!("services/{name}"));
    match std::fs::read_link(base.join("data")) {
        Ok(t) => t.parent().map(Path::to_path_buf).unwrap_or(base),
        Err(_) => base,
    }
}

const PG_APP: &str = "name: x\nmem: 64M\nservices:\n  db: postgresql\n";

#[test]
fn a_postgres_data_dir_left_half_initialised_is_initialised_again() {
    if !postgres_installed() {
        return;
    }
    let p = Project::new(&[("stackato.yml", PG_APP)]).with_services(&["db"]);
    p.cmd(&["services", "start"]).code(0);
    p.cmd(&["services", "stop"]).code(0);
    // What an interrupted initdb leaves: PG_VERSION first, nothing else yet.
    let data = service_root(&p, "db").join("data");
    let version = std::fs::read(data.join("PG_VERSION")).expect("PG_VERSION");
    let md = std::fs::metadata(&data).unwrap();
    std::fs::remove_dir_all(&data).unwrap();
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("PG_VERSION"), version).unwrap();
    std::os::unix::fs::chown(&data, Some(md.uid()), Some(md.gid())).unwrap();
    std::os::unix::fs::chown(data.join("PG_VERSION"), Some(md.uid()), Some(md.gid())).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
    let r = p.cmd(&["services", "start"]);
    r.code(0)
        .stderr_has("db (postgresql) ready")
        .stderr_has("not completely initialised");
    // The half-made directory was kept aside, not deleted.
    let kept: Vec<String> = std::fs::read_dir(service_root(&p, "db"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("data.broken-"))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}\n{}", r.dump());
}

#[test]
fn a_damaged_postgres_data_dir_is_reported_with_the_reset_hint() {
    if !postgres_installed() {
        return;
    }
    let p = Project::new(&[("stackato.yml", PG_APP)]).with_services(&["db"]);
    p.cmd(&["services", "start"]).code(0);
    p.cmd(&["services", "stop"]).code(0);
    // Complete-looking, but its control file is garbage.
    let control = service_root(&p, "db").join("data/global/pg_control");
    let len = std::fs::metadata(&control).expect("pg_control").len() as usize;
    std::fs::write(&control, vec![0x5a; len]).unwrap();
    let r = p.cmd(&["services", "start", "--service-timeout", "20"]);
    r.code(5).stderr_has("stackato-local services reset db");
    // The way out works.
    p.cmd(&["services", "reset", "db", "--yes"]).code(0);
    p.cmd(&["services", "start"])
        .code(0)
        .stderr_has("db (postgresql) ready");
}

/// The pids of processes whose command line contains `needle`.
fn procs_with(needle: &str) -> Vec<i32> {
    pids()
        .into_iter()
        .filter(|p| cmdline(*p).contains(needle))
        .collect()
}

/// Whether some directory in `root` holds `PG_VERSION` (initdb has begun writing).
fn pg_version_written(root: &Path) -> bool {
    std::fs::read_dir(root)
        .is_ok_and(|rd| rd.flatten().any(|e| e.path().join("PG_VERSION").exists()))
}

#[test]
fn kill_9_during_the_first_postgres_initialisation_does_not_break_the_service() {
    if !postgres_installed() {
        return;
    }
    let p = Project::new(&[("stackato.yml", PG_APP)]).with_services(&["db"]);
    let mut tool = cmd(&p.app)
        .args(["services", "start"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start services start");
    let t0 = Instant::now();
    // Wait for initdb to have begun writing the data directory, then kill everything.
    let initdb = loop {
        let root = service_root(&p, "db");
        let found: Vec<i32> = procs_with("initdb")
            .into_iter()
            .filter(|pid| cmdline(*pid).contains(&root.display().to_string()))
            .collect();
        if !found.is_empty() && pg_version_written(&root) {
            break found;
        }
        if let Ok(Some(st)) = tool.try_wait() {
            panic!("services start ended ({st}) before initdb was caught writing");
        }
        assert!(t0.elapsed() < SERVICES, "initdb never started");
        std::thread::sleep(Duration::from_millis(2));
    };
    kill9(tool.id() as i32);
    let _ = tool.wait();
    for pid in initdb {
        kill9(pid);
    }
    let root = service_root(&p, "db");
    for pid in procs_under(&root) {
        kill9(pid);
    }
    let r = p.cmd(&["services", "start"]);
    r.code(0).stderr_has("db (postgresql) ready");
    // And the database works.
    let env = p.cmd(&["env", "--reveal", "--format", "json"]);
    env.code(0);
    p.cmd(&["services", "stop"]).code(0);
    p.cmd(&["services", "start"]).code(0);
}

#[test]
fn kill_9_during_the_first_mariadb_initialisation_does_not_break_the_service() {
    if !require_all(&[
        "mariadbd|mysqld",
        "mariadb-install-db|mysql_install_db",
        "mariadb|mysql",
    ]) {
        return;
    }
    let _serial = mariadb_serial();
    let p = Project::new(&[(
        "stackato.yml",
        "name: x\nmem: 64M\nservices:\n  db: mysql\n",
    )])
    .with_services(&["db"]);
    let mut tool = cmd(&p.app)
        .args(["services", "start"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start services start");
    let t0 = Instant::now();
    // Wait for the bootstrap to have begun writing the system tables, then kill everything.
    let root = loop {
        let root = service_root(&p, "db");
        let writing = std::fs::read_dir(&root).is_ok_and(|rd| {
            rd.flatten()
                .any(|e| e.path().join("mysql").join("db.frm").exists())
        });
        if writing {
            break root;
        }
        if let Ok(Some(st)) = tool.try_wait() {
            panic!("services start ended ({st}) before the bootstrap was caught writing");
        }
        assert!(t0.elapsed() < SERVICES, "mariadb-install-db never started");
        std::thread::sleep(Duration::from_millis(2));
    };
    kill9(tool.id() as i32);
    let _ = tool.wait();
    let needle = root.display().to_string();
    for pid in procs_with(&needle).into_iter().chain(procs_under(&root)) {
        kill9(pid);
    }
    let r = p.cmd(&["services", "start"]);
    r.code(0).stderr_has("db (mysql) ready");
    p.cmd(&["services", "stop"]).code(0);
    p.cmd(&["services", "start"]).code(0);
}

// ---------------------------------------------------------------------------------------------
// 19. `services reset` while a run uses the service
// ---------------------------------------------------------------------------------------------

#[test]
fn services_reset_is_refused_while_a_run_is_up_and_the_data_survive() {
    let p = Project::new(&[(
        "stackato.yml",
        "name: keep\nmem: 64M\nservices:\n  files: filesystem\nprocesses:\n  web: ~\ncommand: echo $$ > @ROOT@/worker.pid; exec sleep 1000\n",
    )]);
    let mut s = p.run(&["--no-watch"]);
    let worker = read_pid(&p.file("worker.pid"), SHORT);
    let data = p.state("services/files/fs/keep.txt");
    std::fs::write(&data, "keep me").expect("write into the filesystem service");
    let r = p.cmd(&["services", "reset", "files", "--yes"]);
    r.code(64)
        .stderr_has("refused")
        .stderr_has("stackato-local run");
    assert_eq!(
        std::fs::read_to_string(&data).unwrap_or_default(),
        "keep me"
    );
    assert!(
        p.registry()["services"]["files"].is_object(),
        "the record was removed"
    );
    assert!(alive(worker));
    // `services stop` too: the run would take it for a crash and start the servers again.
    p.cmd(&["services", "stop"])
        .code(64)
        .stderr_has("refused")
        .stderr_has("stop the run instead");
    s.interrupt(Duration::from_secs(40));
    // Once the run is over, reset works.
    p.cmd(&["services", "reset", "files", "--yes"]).code(0);
    assert!(!data.exists());
}

// ---------------------------------------------------------------------------------------------
// A state directory the repository shipped (red-team finding: a planted virtualenv reached the
// user's PATH, a planted postgres configuration ran its restore_command)
// ---------------------------------------------------------------------------------------------

#[test]
fn a_state_dir_the_repository_shipped_is_not_used_until_adopted() {
    let tmp = app(&[("stackato.yml", FS_APP)]);
    let dir = canon(tmp.path());
    let home = tempfile::tempdir().expect("home");
    // The repository ships `.stackato-local/` with a registry pointing its filesystem service
    // elsewhere and a virtualenv whose `python` leaves a mark.
    let mark = dir.join("planted-ran");
    write(
        &dir,
        ".stackato-local/services.json",
        br#"{"services": {"files": {"name": "files", "type": "filesystem", "port": null, "credentials": {}}}}"#,
    );
    write(
        &dir,
        ".stackato-local/venv/bin/python",
        format!("#!/bin/sh\ntouch {}\n", mark.display()).as_bytes(),
    );
    for args in [
        &["env"][..],
        &["services", "start"][..],
        &["services", "list"][..],
        &["exec", "--", "true"][..],
    ] {
        untrusting(&dir, home.path(), args)
            .code(8)
            .stderr_has("was not created by stackato-local on this machine")
            .stderr_has("services.json");
    }
    // `allow` records trust for the project's files, but leaves the directory unused.
    untrusting(&dir, home.path(), &["allow"])
        .code(8)
        .stderr_has("--adopt-state");
    untrusting(&dir, home.path(), &["env"]).code(8);
    // Adopting is an explicit choice; then the directory is the project's.
    untrusting(&dir, home.path(), &["allow", "--adopt-state"])
        .code(0)
        .stdout_has("adopted .stackato-local");
    untrusting(&dir, home.path(), &["env"]).code(0);
    assert!(!mark.exists(), "the planted virtualenv ran");
}

#[test]
fn a_state_dir_the_tool_made_stays_its_own_and_a_copy_of_it_does_not() {
    let tmp = app(&[("stackato.yml", FS_APP)]);
    let dir = canon(tmp.path()).join("app");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::write(dir.join("stackato.yml"), FS_APP).expect("manifest");
    let home = tempfile::tempdir().expect("home");
    // Made by the tool: used by every later command, trusted or not.
    untrusting(&dir, home.path(), &["env"]).code(0);
    untrusting(&dir, home.path(), &["env"]).code(0);
    // The same files copied elsewhere (as a repository or an archive would carry them) are
    // not the tool's own there.
    let copy = canon(tmp.path()).join("copy");
    let status = Command::new("cp")
        .arg("-a")
        .arg(&dir)
        .arg(&copy)
        .status()
        .expect("cp");
    assert!(status.success());
    untrusting(&copy, home.path(), &["env"])
        .code(8)
        .stderr_has("was not created by stackato-local on this machine");
}
