//! A project for the tests that run apps: a temp dir with the app in `<root>/app` and the
//! files the test's apps write (marks, pids) in `<root>`, outside the app, so they never change
//! what staging hashes. Its guard stops and resets the project's services and kills whatever
//! still works in the dir, whatever happened in the test.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::Value;
use tempfile::TempDir;

use super::procs::{kill9, procs_under, procs_using, read_pid};
use super::session::Session;
use super::{Run, SHORT, canon, cmd, run, run_with, write};

/// Where root-run services keep their data (see `src/services/paths.rs`).
pub const SYSTEM_ROOT: &str = "/var/lib/stackato-local";

/// Which processes a [`Project`]'s guard kills at the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reap {
    /// Those whose working directory is in the project.
    Cwd,
    /// Those whose working directory, or one of whose open files, is in the project.
    CwdOrOpenFiles,
}

/// A temp dir with the app in `app/`. `@ROOT@` in file texts becomes the (canonical) root, so
/// apps can write marks and pids outside the app dir. Dropping it stops and resets the services
/// named with [`Project::with_services`] and kills every process still working inside it (see
/// [`Reap`]).
pub struct Project {
    pub root: PathBuf,
    pub app: PathBuf,
    pub services: Vec<String>,
    pub reap: Reap,
    _tmp: Option<TempDir>,
}

impl Project {
    /// `export --format procfile` (with the extra environment `env`) into a fresh directory
    /// under the project's root; the Procfile it wrote (the export must succeed).
    pub fn export_procfile(&self, env: &[(&str, &str)]) -> String {
        let out = self.root.join("export-out");
        let r = run_with(
            &self.app,
            &[
                "export",
                "--format",
                "procfile",
                "--out",
                &out.display().to_string(),
            ],
            env,
        );
        r.code(0);
        std::fs::read_to_string(out.join("Procfile"))
            .unwrap_or_else(|e| panic!("no Procfile: {e}\n{}", r.dump()))
    }

    /// A project in a new temp dir, with `files` in its app dir.
    pub fn new(files: &[(&str, &str)]) -> Project {
        let tmp = super::app(&[]);
        let mut p = Project::at(&canon(tmp.path()), files);
        p._tmp = Some(tmp);
        p
    }

    /// A project in `root/app` (`root` is someone else's, e.g. a mount's).
    pub fn at(root: &Path, files: &[(&str, &str)]) -> Project {
        let app = root.join("app");
        std::fs::create_dir_all(&app).expect("create app dir");
        let p = Project {
            root: root.to_path_buf(),
            app,
            services: Vec::new(),
            reap: Reap::Cwd,
            _tmp: None,
        };
        p.write_all(files);
        p
    }

    /// Write `files` into the app dir, `@ROOT@` replaced by the root.
    pub fn write_all(&self, files: &[(&str, &str)]) {
        let root_s = self.root.display().to_string();
        for (rel, text) in files {
            write(&self.app, rel, text.replace("@ROOT@", &root_s).as_bytes());
        }
    }

    /// Write `<app>/<rel>` as it is (in place, like most editors without atomic save).
    pub fn edit(&self, rel: &str, text: &str) {
        write(&self.app, rel, text.as_bytes());
    }

    /// Remember the app's services, to stop and reset them at the end.
    pub fn with_services(mut self, names: &[&str]) -> Project {
        self.services = names.iter().map(|s| s.to_string()).collect();
        self
    }

    /// At the end, also kill the processes that hold a file open in the project.
    pub fn reaping_open_files(mut self) -> Project {
        self.reap = Reap::CwdOrOpenFiles;
        self
    }

    /// `<root>/<rel>`.
    pub fn file(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// The text of `<root>/<rel>`, or "" when it does not exist.
    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.file(rel)).unwrap_or_default()
    }

    /// The pids the apps wrote into `<root>/<file>` for each `(what, file)` of `named`,
    /// waiting up to [`SHORT`] for each: `(what, pid)`.
    #[track_caller]
    pub fn pids(&self, named: &[(&str, &str)]) -> Vec<(String, i32)> {
        named
            .iter()
            .map(|(what, file)| (what.to_string(), read_pid(&self.file(file), SHORT)))
            .collect()
    }

    /// `<app>/.stackato-local/<rel>`.
    pub fn state(&self, rel: &str) -> PathBuf {
        self.app.join(".stackato-local").join(rel)
    }

    /// Start `stackato-local run <args>` in the app dir.
    pub fn run(&self, args: &[&str]) -> Session {
        Session::start(&self.app, args, &[])
    }

    /// [`Project::run`] with extra environment variables (inherited by staging commands).
    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Session {
        Session::start(&self.app, args, env)
    }

    /// Run the binary to completion in the app dir.
    pub fn cmd(&self, args: &[&str]) -> Run {
        run(&self.app, args)
    }

    /// The pid in `.stackato-local/services/<name>/server.pid`.
    pub fn server_pid(&self, name: &str) -> Option<i32> {
        let text =
            std::fs::read_to_string(self.state(&format!("services/{name}/server.pid"))).ok()?;
        let v: Value = serde_json::from_str(&text).ok()?;
        v["pid"].as_i64().map(|p| p as i32)
    }

    /// `services.json`, parsed (panics when it is not JSON).
    #[track_caller]
    pub fn registry(&self) -> Value {
        let path = self.state("services.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not JSON ({e}):\n{text}", path.display()))
    }

    /// The remembered port of service `name`.
    #[track_caller]
    pub fn service_port(&self, name: &str) -> u16 {
        let reg = self.registry();
        reg["services"][name]["port"]
            .as_u64()
            .unwrap_or_else(|| panic!("no port for {name} in {reg:#}")) as u16
    }

    /// Where a root-run service keeps its files (the `data` link's parent), if it has any.
    pub fn service_root(&self, name: &str) -> Option<PathBuf> {
        let target = std::fs::read_link(self.state(&format!("services/{name}/data"))).ok()?;
        target.parent().map(Path::to_path_buf)
    }
}

/// Run the binary in `dir`, ignoring every failure (for cleanup).
pub fn quiet(dir: &Path, args: &[&str]) {
    let _ = cmd(dir)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

impl Drop for Project {
    fn drop(&mut self) {
        if !self.services.is_empty() {
            let roots: Vec<Option<PathBuf>> =
                self.services.iter().map(|n| self.service_root(n)).collect();
            quiet(&self.app, &["services", "stop", "--grace", "5"]);
            for (name, root) in self.services.iter().zip(roots) {
                quiet(&self.app, &["services", "reset", name, "--yes"]);
                if let Some(root) = root {
                    for pid in procs_under(&root) {
                        kill9(pid);
                    }
                    if root.starts_with(SYSTEM_ROOT) && root.exists() {
                        let _ = std::fs::remove_dir_all(&root);
                    }
                }
            }
        }
        // Whatever a failed test left running in here.
        let left = match self.reap {
            Reap::Cwd => procs_under(&self.root),
            Reap::CwdOrOpenFiles => procs_using(&self.root),
        };
        for pid in left {
            kill9(pid);
        }
    }
}

/// Held by every test that starts MariaDB (also across test binaries: a file lock). MariaDB
/// deletes every `#sql*` file in its tmpdir when it starts and the product leaves that at the
/// shared /tmp, so two fresh instances starting at once can break each other (see
/// `mariadb_fresh_projects_start_in_parallel` in tests/services.rs).
pub fn mariadb_serial() -> std::fs::File {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(std::env::temp_dir().join("stackato-local-tests-mariadb.lock"))
        .expect("open the MariaDB test lock");
    f.lock().expect("take the MariaDB test lock");
    f
}
