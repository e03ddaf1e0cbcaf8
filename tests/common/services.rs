//! The harness of the tests that start services with `services start` (tests/services.rs):
//! which programs each service type needs, a project whose `stackato.yml` declares services
//! (the app at the project's root; its guard stops the servers and deletes their data, also
//! the root-owned `/var/lib/stackato-local/<id>-<name>` directories), the credentials
//! `VCAP_SERVICES` advertises, and the servers' own clients (psql, mariadb, redis-cli,
//! memcached's text protocol). Processes by pid are in [`super::procs`].

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Map, Value};
use tempfile::TempDir;

use super::procs::{alive, kill9, server_pids};
use super::project::{SYSTEM_ROOT, quiet};
use super::{Run, app, canon, find_program, require_all, run, run_with, write};

// ---------------------------------------------------------------------------------------------
// Which programs each service type needs
// ---------------------------------------------------------------------------------------------

/// The server programs the product needs for `kind`, and the client the tests use.
pub fn programs(kind: &str) -> &'static [&'static str] {
    match kind {
        "postgresql" => &["postgres", "initdb", "pg_isready", "psql"],
        "mysql" => &[
            "mariadbd|mysqld",
            "mariadb-install-db|mysql_install_db",
            "mariadb|mysql",
        ],
        "redis" => &["redis-server", "redis-cli"],
        "memcached" => &["memcached"],
        _ => &[],
    }
}

/// Whether everything the service types `kinds` need is installed (else SKIP or panic).
#[track_caller]
pub fn need(kinds: &[&str]) -> bool {
    kinds.iter().all(|k| require_all(programs(k)))
}

/// The path of an installed program (checked with [`need`] before).
#[track_caller]
pub fn program(name: &str) -> PathBuf {
    find_program(name).unwrap_or_else(|| panic!("{name} not installed"))
}

// ---------------------------------------------------------------------------------------------
// A project, and the guard that cleans up after it
// ---------------------------------------------------------------------------------------------

/// A temp project whose `stackato.yml` declares `services`. Dropping it stops its servers and
/// deletes their data and credentials, whatever happened in the test.
pub struct Project {
    pub dir: PathBuf,
    pub services: Vec<String>,
    _tmp: TempDir,
}

pub fn manifest(app_name: &str, services: &[(&str, &str)]) -> String {
    let mut text = format!("name: {app_name}\nmem: 64M\nservices:\n");
    for (name, kind) in services {
        text.push_str(&format!("  {name}: {kind}\n"));
    }
    text
}

impl Project {
    pub fn new(app_name: &str, services: &[(&str, &str)]) -> Project {
        let tmp = app(&[("stackato.yml", &manifest(app_name, services))]);
        Project {
            dir: canon(tmp.path()),
            services: services.iter().map(|(n, _)| n.to_string()).collect(),
            _tmp: tmp,
        }
    }

    /// The project in `parent/app`, with `parent` kept alive (and deleted) with it.
    pub fn inside(parent: TempDir, app_name: &str, services: &[(&str, &str)]) -> Project {
        let dir = parent.path().join("app");
        write(
            &dir,
            "stackato.yml",
            manifest(app_name, services).as_bytes(),
        );
        Project {
            dir: canon(&dir),
            services: services.iter().map(|(n, _)| n.to_string()).collect(),
            _tmp: parent,
        }
    }

    pub fn run(&self, args: &[&str]) -> Run {
        run(&self.dir, args)
    }

    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        run_with(&self.dir, args, env)
    }

    /// `services start` (all); asserts exit 0.
    #[track_caller]
    pub fn start(&self) -> Run {
        let r = self.run(&["services", "start"]);
        r.code(0);
        r
    }

    /// `services stop` (all); asserts exit 0.
    #[track_caller]
    pub fn stop(&self) -> Run {
        let r = self.run(&["services", "stop", "--grace", "10"]);
        r.code(0);
        r
    }

    /// `env --format json` plus `extra`, as a map; asserts exit 0.
    #[track_caller]
    pub fn env_json(&self, extra: &[&str], vars: &[(&str, &str)]) -> BTreeMap<String, String> {
        let mut args = vec!["env", "--format", "json"];
        args.extend_from_slice(extra);
        let r = self.run_env(&args, vars);
        r.code(0);
        let doc = r.json();
        let obj = doc
            .as_object()
            .unwrap_or_else(|| panic!("env JSON is not an object\n{}", r.dump()));
        obj.iter()
            .map(|(k, v)| {
                let s = v
                    .as_str()
                    .unwrap_or_else(|| panic!("{k} is not a string in {doc:#}"));
                (k.clone(), s.to_string())
            })
            .collect()
    }

    /// The credentials of service `name`, from `VCAP_SERVICES` of `env --reveal --format json`.
    #[track_caller]
    pub fn creds(&self, name: &str) -> Creds {
        let env = self.env_json(&["--reveal"], &[]);
        creds_in(&env, name).unwrap_or_else(|| panic!("no {name} in VCAP_SERVICES: {env:#?}"))
    }

    /// `.stackato-local/services/<name>/`.
    pub fn base(&self, name: &str) -> PathBuf {
        self.dir.join(".stackato-local/services").join(name)
    }

    /// The pid recorded in `.stackato-local/services/<name>/server.pid`.
    pub fn pid(&self, name: &str) -> Option<i32> {
        let text = std::fs::read_to_string(self.base(name).join("server.pid")).ok()?;
        let v: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("server.pid of {name} is not JSON ({e}): {text}"));
        v.get("pid").and_then(Value::as_i64).map(|p| p as i32)
    }

    /// The pid of the running server of `name`; panics when there is none.
    #[track_caller]
    pub fn live_pid(&self, name: &str) -> i32 {
        let pid = self
            .pid(name)
            .unwrap_or_else(|| panic!("{name} has no server.pid"));
        assert!(
            alive(pid),
            "{name}: pid {pid} from server.pid is not running"
        );
        pid
    }

    /// Where the server's own files live: the target of the `data` link's parent as root,
    /// else the service's state dir.
    pub fn root(&self, name: &str) -> PathBuf {
        let base = self.base(name);
        match std::fs::read_link(base.join("data")) {
            Ok(target) => target.parent().map(Path::to_path_buf).unwrap_or(target),
            Err(_) => base,
        }
    }

    /// The `services` (list) line of `name`.
    #[track_caller]
    pub fn list_line(&self, name: &str) -> String {
        let r = self.run(&["services"]);
        r.code(0);
        r.stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no line for {name}\n{}", r.dump()))
            .to_string()
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let roots: Vec<PathBuf> = self.services.iter().map(|n| self.root(n)).collect();
        quiet(&self.dir, &["services", "stop", "--grace", "5"]);
        for (name, root) in self.services.iter().zip(&roots) {
            // Whatever survived (a test that broke things): our processes, by pid.
            for pid in server_pids(root) {
                kill9(pid);
            }
            quiet(&self.dir, &["services", "reset", name, "--yes"]);
            if root.starts_with(SYSTEM_ROOT) && root.exists() {
                let _ = std::fs::remove_dir_all(root);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Credentials
// ---------------------------------------------------------------------------------------------

/// One service's credentials, as `VCAP_SERVICES` gives them.
#[derive(Debug, Clone)]
pub struct Creds(pub Map<String, Value>);

impl Creds {
    #[track_caller]
    pub fn get(&self, k: &str) -> String {
        match self.0.get(k) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            other => panic!("credential {k} is {other:?} in {:?}", self.0),
        }
    }

    #[track_caller]
    pub fn port(&self) -> u16 {
        self.get("port").parse().expect("numeric port")
    }

    pub fn host(&self) -> String {
        self.get("host")
    }

    /// The same credentials with another password.
    pub fn with_password(&self, pw: &str) -> Creds {
        let mut m = self.0.clone();
        m.insert("password".into(), Value::String(pw.into()));
        Creds(m)
    }
}

pub fn creds_in(env: &BTreeMap<String, String>, name: &str) -> Option<Creds> {
    let vcap: Value = serde_json::from_str(env.get("VCAP_SERVICES")?).ok()?;
    vcap.as_object()?
        .values()
        .filter_map(Value::as_array)
        .flatten()
        .find(|e| e.get("name").and_then(Value::as_str) == Some(name))
        .and_then(|e| e.get("credentials")?.as_object().cloned())
        .map(Creds)
}

// ---------------------------------------------------------------------------------------------
// The servers' own clients
// ---------------------------------------------------------------------------------------------

/// Run a client; `Ok(stdout)` on success, `Err(everything)` otherwise.
pub fn client(mut c: Command) -> Result<String, String> {
    let out = c
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {:?}: {e}", c.get_program()))?;
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!(
            "{:?} exited {:?}\n{stdout}\n{}",
            c.get_program(),
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// `psql` over TCP with the credentials (password from them, nothing else).
pub fn psql(c: &Creds, sql: &str) -> Result<String, String> {
    let mut cmd = Command::new(program("psql"));
    cmd.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h"])
        .arg(c.host())
        .arg("-p")
        .arg(c.get("port"))
        .arg("-U")
        .arg(c.get("user"))
        .arg("-d")
        .arg(c.get("name"))
        .arg("-c")
        .arg(sql)
        .env_remove("PGSERVICE")
        .env("PGPASSWORD", c.get("password"))
        .env("PGCONNECT_TIMEOUT", "10");
    client(cmd)
}

/// `psql URL` (a `POSTGRESQL_URL` as advertised).
pub fn psql_url(url: &str, sql: &str) -> Result<String, String> {
    let mut cmd = Command::new(program("psql"));
    cmd.args([
        "-X",
        "-q",
        "-A",
        "-t",
        "-v",
        "ON_ERROR_STOP=1",
        "-d",
        url,
        "-c",
        sql,
    ])
    .env_remove("PGPASSWORD")
    .env("PGCONNECT_TIMEOUT", "10");
    client(cmd)
}

/// The mariadb (or mysql) client over TCP with the credentials.
pub fn mysql(c: &Creds, sql: &str) -> Result<String, String> {
    let mut cmd = Command::new(program("mariadb|mysql"));
    cmd.args([
        "--no-defaults",
        "--protocol=tcp",
        "--connect-timeout=10",
        "-N",
        "-B",
    ])
    .arg(format!("-h{}", c.host()))
    .arg(format!("-P{}", c.get("port")))
    .arg(format!("-u{}", c.get("user")))
    .arg(format!("-D{}", c.get("name")))
    .arg("-e")
    .arg(sql)
    .env("MYSQL_PWD", c.get("password"));
    client(cmd)
}

/// `redis-cli` with the credentials (`password` may be empty: no AUTH).
pub fn redis(c: &Creds, password: &str, args: &[&str]) -> String {
    let mut cmd = Command::new(program("redis-cli"));
    cmd.arg("-h")
        .arg(c.host())
        .arg("-p")
        .arg(c.get("port"))
        .arg("--no-auth-warning");
    if !password.is_empty() {
        cmd.arg("-a").arg(password);
    }
    cmd.args(args);
    client(cmd).unwrap_or_else(|e| e)
}

/// `redis-cli` with the host, port and password of a `REDIS_URL` as advertised
/// (`redis://:PASSWORD@HOST:PORT`). Parsed here: redis-cli 7.0's own `-u` sends an empty user
/// name with AUTH for that form, and the server refuses it.
pub fn redis_url(url: &str, args: &[&str]) -> String {
    let rest = url
        .strip_prefix("redis://:")
        .unwrap_or_else(|| panic!("REDIS_URL {url} is not redis://:PASSWORD@HOST:PORT"));
    let (pw, hostport) = rest.rsplit_once('@').expect("@ in REDIS_URL");
    let (host, port) = hostport.rsplit_once(':').expect("port in REDIS_URL");
    let mut m = Map::new();
    m.insert("host".into(), Value::String(host.into()));
    m.insert("port".into(), Value::String(port.into()));
    redis(&Creds(m), pw, args)
}

/// One memcached text-protocol request; the answer up to its terminator.
pub fn memcached(host: &str, port: u16, request: &str) -> String {
    let addr = format!("{host}:{port}");
    let mut s = TcpStream::connect(&addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    // A hang guard, not a speed limit: a busy machine may take seconds to answer.
    s.set_read_timeout(Some(super::SHORT)).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    let done = |b: &[u8]| {
        ["END\r\n", "STORED\r\n", "ERROR\r\n", "NOT_STORED\r\n"]
            .iter()
            .any(|t| b.ends_with(t.as_bytes()))
            || (b.starts_with(b"VERSION") && b.ends_with(b"\r\n"))
    };
    while !done(&got) {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}
