//! The services and frameworks the platform had beyond the first four: RabbitMQ (Debian's
//! `rabbitmq-server`, a private node per project) and Java web apps (a WAR in Jetty 9), run
//! end to end by the real binary; CouchDB (Apache CouchDB, or `pouchdb-server`, which CI
//! installs from npm); the clear message for the services whose server is not installed
//! (mongodb, elasticsearch, couchdb: Debian 12 packages none of them).
//!
//! The apps are the fixtures in tests/fixtures/amqp-app (a stdlib-only Python app speaking
//! AMQP 0-9-1 over a raw socket with the credentials from `RABBITMQ_URL`/`VCAP_SERVICES`) and
//! tests/fixtures/java-war (a servlet compiled here with `javac` against jetty9's servlet API,
//! and a JSP), served as an exploded WAR and as a `.war` file.
//!
//! A test whose programs are not installed prints a loud SKIP and passes, unless
//! `STACKATO_LOCAL_REQUIRE_SERVICES=1` (CI), where it fails (see `common::require`).

use crate::common;

use std::path::Path;
use std::process::Command;

use crate::common::http::http_get;
use crate::common::project::Project;
use crate::common::*;

const CTRL_C: std::time::Duration = std::time::Duration::from_secs(60);

/// The files of `tests/fixtures/<name>`, as (relative path, text).
fn fixture(name: &str) -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let mut out = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("read fixture dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(&root).expect("inside").display().to_string();
                out.push((rel, std::fs::read_to_string(&p).expect("read fixture file")));
            }
        }
    }
    out
}

/// The RabbitMQ node name of service `name`: its Mnesia directory is named after it.
#[track_caller]
fn node_of(p: &Project, name: &str) -> String {
    let dir = p.state(&format!("services/{name}/data/mnesia"));
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .filter(|e| e.path().join("msg_stores").is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .next()
        .unwrap_or_else(|| panic!("no node directory in {}", dir.display()))
}

fn project_of(name: &str) -> Project {
    let files = fixture(name);
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    Project::new(&refs)
}

// ---------------------------------------------------------------------------------------------
// RabbitMQ
// ---------------------------------------------------------------------------------------------

#[test]
fn rabbitmq_credentials_work_and_a_durable_queue_survives_a_restart() {
    if !require_all(&["rabbitmq-server", "rabbitmqctl", "epmd"]) {
        return;
    }
    let p = project_of("amqp-app").with_services(&["amqp-app-mq"]);

    let mut s = p.run(&[]);
    let port = s.ready("web.0", SERVICES);
    s.assert_err_has("amqp-app-mq (rabbitmq) ready on 127.0.0.1:");
    let (code, body) = http_get(port, "/publish?body=kept-across-runs");
    assert_eq!(
        (code, body.as_str()),
        (200, "published kept-across-runs"),
        "{}",
        s.dump()
    );
    // A wrong password is refused: the server checks the credentials it was given.
    let (_, body) = http_get(port, "/wrong-password");
    assert!(body.starts_with("refused: "), "{body}\n{}", s.dump());
    // Listening on loopback only (AMQP, distribution, its own epmd), under a node name of its
    // own, not the system's `rabbit@…`.
    let pid = p.server_pid("amqp-app-mq").expect("a server pid");
    let node = node_of(&p, "amqp-app-mq");
    assert!(
        node.starts_with("rabbit-") && node.ends_with("@localhost"),
        "{node}"
    );
    assert!(common::procs::alive(pid));
    let run_dir = p
        .service_root("amqp-app-mq")
        .unwrap_or_else(|| p.state("services/amqp-app-mq"))
        .join("run");
    let others = std::fs::read_to_string(run_dir.join("rabbitmq.ports")).expect("ports file");
    let mut ports = vec![p.service_port("amqp-app-mq")];
    ports.extend(
        others
            .split_whitespace()
            .map(|w| w.parse::<u16>().expect("a port")),
    );
    assert_eq!(
        ports.len(),
        3,
        "AMQP, distribution and epmd ports: {ports:?}"
    );
    let epmd = ports[2];
    for port in ports {
        let ls = common::procs::listeners(port);
        assert!(!ls.is_empty(), "nothing listens on {port}");
        for l in ls {
            // 127.0.0.1, or ::1 (epmd listens on both loopbacks).
            assert!(
                l == "tcp:0100007F" || l == "tcp6:00000000000000000000000001000000",
                "port {port} listens beyond loopback: {l}"
            );
        }
    }

    // The run stops the node it started (cleanly); the next run starts it again: the
    // persistent message is still queued, and taken once.
    s.interrupt(CTRL_C);
    s.assert_err_has("amqp-app-mq (rabbitmq) stopped");
    assert!(
        !common::procs::alive(pid),
        "the node still runs after the run ended"
    );
    assert_eq!(
        common::procs::listeners(epmd),
        Vec::<String>::new(),
        "the node's own epmd outlived it"
    );
    let mut s = p.run(&[]);
    let port = s.ready("web.0", SERVICES);
    let (code, body) = http_get(port, "/get");
    assert_eq!(
        (code, body.as_str()),
        (200, "got kept-across-runs"),
        "{}",
        s.dump()
    );
    let (_, body) = http_get(port, "/get");
    assert_eq!(body, "(empty)");
    s.interrupt(CTRL_C);
}

#[test]
fn two_projects_get_two_rabbitmq_nodes() {
    if !require_all(&["rabbitmq-server", "rabbitmqctl", "epmd"]) {
        return;
    }
    let yml = "name: twin\nservices:\n  q: rabbitmq\n";
    let a = Project::new(&[("stackato.yml", yml)]).with_services(&["q"]);
    let b = Project::new(&[("stackato.yml", yml)]).with_services(&["q"]);
    a.cmd(&["services", "start"]).code(0);
    b.cmd(&["services", "start"]).code(0);
    let (pa, pb) = (
        a.server_pid("q").expect("pid a"),
        b.server_pid("q").expect("pid b"),
    );
    assert_ne!(pa, pb);
    assert!(common::procs::alive(pa) && common::procs::alive(pb));
    assert_ne!(a.service_port("q"), b.service_port("q"));
    let (na, nb) = (node_of(&a, "q"), node_of(&b, "q"));
    assert!(na.starts_with("rabbit-"), "{na}");
    assert_ne!(na, nb);
    // `services list` shows it running; the data directory is its own.
    a.cmd(&["services", "list"]).code(0).stdout_has("running");
}

// ---------------------------------------------------------------------------------------------
// CouchDB (Apache CouchDB, or pouchdb-server speaking its HTTP API)
// ---------------------------------------------------------------------------------------------

/// One HTTP request to the local server with the service's credentials (`None`: anonymous).
fn couch(
    port: u16,
    method: &str,
    path: &str,
    auth: Option<(&str, &str)>,
    body: Option<&str>,
) -> (u16, String) {
    let a = stackato_local::api::services::http::request(
        port,
        method,
        path,
        auth,
        body,
        std::time::Duration::from_secs(30),
    )
    .unwrap_or_else(|e| panic!("{method} {path} on port {port}: {e}"));
    (a.status, a.body)
}

#[test]
fn couchdb_checks_its_credentials_keeps_its_data_and_listens_on_loopback_only() {
    if !require("couchdb|pouchdb-server") {
        return;
    }
    let p = Project::new(&[(
        "stackato.yml",
        "name: sofa\nservices:\n  docs: couchdb\nprocesses:\n  web: sleep 100\n",
    )])
    .with_services(&["docs"]);
    p.cmd(&["services", "start"])
        .code(0)
        .stderr_has("docs (couchdb) ready on 127.0.0.1:");
    let reg = p.registry();
    let c = &reg["services"]["docs"]["credentials"];
    let (user, pass, db) = (
        c["username"].as_str().expect("username").to_string(),
        c["password"].as_str().expect("password").to_string(),
        c["name"].as_str().expect("name").to_string(),
    );
    let port = p.service_port("docs");
    assert_eq!(c["port"].as_u64(), Some(u64::from(port)));
    let me = Some((user.as_str(), pass.as_str()));
    // The credentials' database exists, and only its user gets in.
    let doc = format!("/{db}/kept");
    let (code, body) = couch(port, "PUT", &doc, me, Some(r#"{"v":"across runs"}"#));
    assert_eq!(code, 201, "{body}");
    assert_eq!(couch(port, "GET", &doc, None, None).0, 401);
    assert_eq!(
        couch(port, "GET", &doc, Some((&user, "wrong")), None).0,
        401
    );
    let pid = p.server_pid("docs").expect("a server pid");
    for l in common::procs::listeners(port) {
        assert_eq!(l, "tcp:0100007F", "port {port} listens beyond loopback");
    }
    // Stopped cleanly; started again, the document is still there.
    p.cmd(&["services", "stop"]).code(0);
    assert!(
        !common::procs::alive(pid),
        "the server still runs after stop"
    );
    p.cmd(&["services", "start"]).code(0);
    // Where it is now: another test may have taken the remembered port while it was stopped
    // (then it moves, as it should, and says so).
    let port = p.service_port("docs");
    let (code, body) = couch(port, "GET", &doc, me, None);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("across runs"), "{body}");
    p.cmd(&["services", "stop"]).code(0);
}

#[test]
fn an_app_stores_documents_in_couchdb_with_the_credentials_of_its_environment() {
    if !require("couchdb|pouchdb-server") {
        return;
    }
    let p = project_of("couch-app").with_services(&["couch-app-docs"]);
    let mut s = p.run(&[]);
    let port = s.ready("web.0", SERVICES);
    s.assert_err_has("couch-app-docs (couchdb) ready on 127.0.0.1:");
    let (code, body) = http_get(port, "/put?id=note1&text=kept-across-runs");
    assert_eq!((code, body.as_str()), (200, "stored"), "{}", s.dump());
    s.interrupt(CTRL_C);
    s.assert_err_has("couch-app-docs (couchdb) stopped");
    let mut s = p.run(&[]);
    let port = s.ready("web.0", SERVICES);
    let (code, body) = http_get(port, "/get?id=note1");
    assert_eq!(
        (code, body.as_str()),
        (200, "kept-across-runs"),
        "{}",
        s.dump()
    );
    s.interrupt(CTRL_C);
}

// ---------------------------------------------------------------------------------------------
// MongoDB (not installable on Debian 12 nor from PyPI/npm: skipped loudly when absent, also
// in CI)
// ---------------------------------------------------------------------------------------------

#[test]
fn mongodb_starts_on_loopback_creates_the_user_and_keeps_its_data_directory() {
    if common::find_program("mongod").is_none() {
        skip(
            "mongodb_starts_on_loopback_creates_the_user_and_keeps_its_data_directory: no `mongod` installed (Debian 12 has no package; not required in CI)",
        );
        return;
    }
    let p = Project::new(&[(
        "stackato.yml",
        "name: mg\nservices:\n  docs: mongodb\nprocesses:\n  web: sleep 100\n",
    )])
    .with_services(&["docs"]);
    // Ready means it answered `ping`, and the user of the credentials was created.
    p.cmd(&["services", "start"])
        .code(0)
        .stderr_has("docs (mongodb) ready on 127.0.0.1:")
        .stderr_has("data directory initialised");
    let port = p.service_port("docs");
    let pid = p.server_pid("docs").expect("a server pid");
    for l in common::procs::listeners(port) {
        assert_eq!(l, "tcp:0100007F", "port {port} listens beyond loopback");
    }
    p.cmd(&["services", "stop"]).code(0);
    assert!(!common::procs::alive(pid), "mongod still runs after stop");
    // The second start uses the same data and finds the user there (updated, not refused).
    let r = p.cmd(&["services", "start"]);
    r.code(0).stderr_has("docs (mongodb) ready on 127.0.0.1:");
    assert!(!r.stderr.contains("initialised"), "{}", r.stderr);
    p.cmd(&["services", "stop"]).code(0);
}

// ---------------------------------------------------------------------------------------------
// Elasticsearch (not installable on Debian 12 nor from PyPI/npm: skipped loudly when absent,
// also in CI)
// ---------------------------------------------------------------------------------------------

#[test]
fn elasticsearch_answers_on_loopback_and_keeps_its_documents() {
    if common::find_program("elasticsearch").is_none()
        && !std::path::Path::new("/usr/share/elasticsearch/bin/elasticsearch").is_file()
    {
        skip(
            "elasticsearch_answers_on_loopback_and_keeps_its_documents: no `elasticsearch` installed (Debian 12 has no package; not required in CI)",
        );
        return;
    }
    let p = Project::new(&[(
        "stackato.yml",
        "name: find\nservices:\n  search: elasticsearch\nprocesses:\n  web: sleep 100\n",
    )])
    .with_services(&["search"]);
    p.cmd(&["services", "start"])
        .code(0)
        .stderr_has("search (elasticsearch) ready on 127.0.0.1:");
    let port = p.service_port("search");
    let (code, body) = couch(
        port,
        "PUT",
        "/notes/_doc/1?refresh=true",
        None,
        Some(r#"{"v":"kept"}"#),
    );
    assert!(code == 200 || code == 201, "{code} {body}");
    for l in common::procs::listeners(port) {
        assert_eq!(l, "tcp:0100007F", "port {port} listens beyond loopback");
    }
    p.cmd(&["services", "stop"]).code(0);
    p.cmd(&["services", "start"]).code(0);
    let (code, body) = couch(port, "GET", "/notes/_doc/1", None, None);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("kept"), "{body}");
    p.cmd(&["services", "stop"]).code(0);
}

// ---------------------------------------------------------------------------------------------
// Services that cannot run here
// ---------------------------------------------------------------------------------------------

#[test]
fn a_service_whose_server_is_not_installed_names_the_fix() {
    for (kind, program) in [
        ("mongodb", "mongod"),
        ("elasticsearch", "elasticsearch"),
        ("couchdb", "couchdb"),
    ] {
        let p = Project::new(&[(
            "stackato.yml",
            &format!("name: x\nservices:\n  docs: {kind}\nprocesses:\n  web: sleep 100\n"),
        )])
        .with_services(&["docs"]);
        let r = common::run_with(
            &p.app,
            &["services", "start"],
            &[("STACKATO_LOCAL_SERVER_PATH", "")],
        );
        r.code(5)
            .stderr_has(&format!("service \"docs\" ({kind})"))
            .stderr_has(&format!("`{program}`"))
            .stderr_has("--skip-service docs");
    }
}

// ---------------------------------------------------------------------------------------------
// Java web apps in Jetty
// ---------------------------------------------------------------------------------------------

const SERVLET_API: &str = "/usr/share/jetty9/lib/servlet-api-3.1.jar";

/// Compile the fixture's servlet into `<app>/WEB-INF/classes`.
fn compile_servlet(app: &Path) {
    let out = Command::new("javac")
        .arg("-cp")
        .arg(SERVLET_API)
        .arg("-d")
        .arg(app.join("WEB-INF/classes"))
        .arg(app.join("src/example/Hello.java"))
        .output()
        .expect("run javac");
    assert!(
        out.status.success(),
        "javac failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn need_java() -> bool {
    require_all(&["java", "javac", "python3"])
        && (Path::new(SERVLET_API).is_file()
            || {
                if std::env::var("STACKATO_LOCAL_REQUIRE_SERVICES").as_deref() == Ok("1") {
                    panic!(
                        "jetty9 is not installed ({SERVLET_API}), and STACKATO_LOCAL_REQUIRE_SERVICES=1 requires it"
                    );
                }
                skip("jetty9 is not installed (apt-get install jetty9)");
                false
            })
}

#[track_caller]
fn assert_serves_the_fixture(p: &Project, name: &str) {
    let mut s = p.run(&[]);
    let port = s.ready("web.0", SERVICES);
    let (code, body) = http_get(port, "/hello");
    assert_eq!(code, 200, "{body}\n{}", s.dump());
    assert_eq!(
        body.trim(),
        format!("hello from a servlet on port {port} in {name}"),
        "{}",
        s.dump()
    );
    // The JSP index is compiled by Jetty's JSP engine at the first request.
    let (code, body) = http_get(port, "/");
    assert_eq!((code, body.trim()), (200, "JSP says 42"), "{}", s.dump());
    s.interrupt(CTRL_C);
}

#[test]
fn an_exploded_war_runs_in_jetty_and_answers_http() {
    if !need_java() {
        return;
    }
    let p = project_of("java-war");
    compile_servlet(&p.app);
    assert_serves_the_fixture(&p, "java-war");
    // Jetty's own files stay under WEB-INF, which it never serves.
    assert!(
        p.state("apps/java-war/g1/0/app/WEB-INF/.jetty-base/webapps/ROOT.xml")
            .is_file()
    );
}

#[test]
fn a_war_file_runs_in_jetty_and_answers_http() {
    if !need_java() {
        return;
    }
    // Build the exploded WAR, then pack it as shop.war (a zip) in an app of its own.
    let build = project_of("java-war");
    compile_servlet(&build.app);
    let p = Project::new(&[("stackato.yml", "name: shop\nframework:\n  type: spring\n")]);
    let pack = Command::new("python3")
        .args([
            "-c",
            "import os, sys, zipfile\n\
             src, war = sys.argv[1], sys.argv[2]\n\
             with zipfile.ZipFile(war, 'w') as z:\n\
             \x20   for top in ('WEB-INF', 'index.jsp'):\n\
             \x20       p = os.path.join(src, top)\n\
             \x20       files = [p] if os.path.isfile(p) else [os.path.join(d, f) for d, _, fs in os.walk(p) for f in fs]\n\
             \x20       for f in files:\n\
             \x20           z.write(f, os.path.relpath(f, src))\n",
        ])
        .arg(&build.app)
        .arg(p.app.join("shop.war"))
        .status()
        .expect("run python3");
    assert!(pack.success());
    assert_serves_the_fixture(&p, "shop");
}
