//! What an app, its hooks or an `exec` command leave running in the background (a `&` job,
//! a double-forked daemon that left its process group) ends with them: at the end of the
//! staging for staging hooks, at the end of the run for the app's processes, at the end of
//! `exec` for its command; as after a killed run, where the guardian does it.

use std::time::Duration;

use crate::common::procs::{cmdlines, procs_under};
use crate::common::project::Project;
use crate::common::*;

const SHORT: Duration = Duration::from_secs(60);

/// The processes under the project whose command line contains `needle`.
fn running(p: &Project, needle: &str) -> Vec<String> {
    cmdlines(&procs_under(&p.root))
        .into_iter()
        .filter(|c| c.contains(needle))
        .collect()
}

#[test]
fn daemons_and_background_jobs_of_hooks_and_apps_end_with_the_staging_and_the_run() {
    if !require("python3") {
        return;
    }
    let p = Project::new(&[(
        "stackato.yml",
        "name: leaves\nhooks:\n  post-staging:\n  - sleep 7790 &\nprocesses:\n  web: (setsid sh -c 'sleep 7761 & sleep 7762' &); exec python3 -m http.server $PORT --bind 127.0.0.1\n",
    )]);
    let mut s = p.run(&[]);
    s.ready("web.0", SHORT);
    // The staging hook's background job ended with the staging.
    assert_eq!(
        running(&p, "sleep 7790"),
        Vec::<String>::new(),
        "{}",
        s.dump()
    );
    // The app's daemon runs while the app does...
    wait_until(
        SHORT,
        || !running(&p, "sleep 7761").is_empty(),
        || format!("the daemon\n{}", s.dump()),
    );
    s.interrupt(SHORT);
    // ... and not after.
    wait_until(
        SHORT,
        || running(&p, "sleep 776").is_empty(),
        || "the daemon and its job gone after Ctrl-C".to_string(),
    );
}

#[test]
fn exec_leaves_nothing_running_behind_its_command() {
    let p = Project::new(&[(
        "stackato.yml",
        "name: leaves2\nprocesses:\n  web: sleep 1000\n",
    )]);
    let r = p.cmd(&[
        "exec",
        "--",
        "sh",
        "-c",
        "sleep 7720 & (setsid sleep 7721 &); exit 3",
    ]);
    assert_eq!(r.code, Some(3), "{}", r.dump());
    wait_until(
        SHORT,
        || running(&p, "sleep 772").is_empty(),
        || "exec's background jobs gone".to_string(),
    );
}

/// `exec` started a service, then a `run` of the project began using it: when `exec` ends,
/// the service stays up for the run (it was stopped under the run's feet).
#[test]
fn exec_leaves_the_services_a_concurrent_run_uses_running() {
    if !require("redis-server") {
        return;
    }
    let p = Project::new(&[(
        "stackato.yml",
        "name: sharing\nservices:\n  cache: redis\nprocesses:\n  web: python3 -m http.server $PORT --bind 127.0.0.1\n",
    )]);
    // The command ends once the test says so (never on a timer: the run must be up first,
    // however long a busy machine takes to start it).
    let done = p.file("exec-may-end");
    let script = format!(
        "echo services-up; while [ ! -e '{}' ]; do sleep 0.1; done",
        done.display()
    );
    let mut exec = crate::common::session::Session::start_sub(
        &p.app,
        "exec",
        &["--", "sh", "-c", &script],
        &[],
    );
    exec.wait_for(crate::common::session::Stream::Out, "services-up", SHORT);
    let mut run = p.run(&[]);
    run.ready("web.0", SHORT);
    std::fs::write(&done, "").expect("tell the exec command to end");
    exec.expect_exit(0, SHORT);
    let said = exec.stderr();
    assert!(
        said.contains("kept running: a `run` of this project uses them"),
        "{}",
        exec.dump()
    );
    assert!(!said.contains("stopped"), "{}", exec.dump());
    // The run's service did not die under it.
    run.stays(
        Duration::from_secs(2),
        &[(
            crate::common::session::Stream::Err,
            "stopped unexpectedly",
            0,
        )],
    );
    run.interrupt(SHORT);
    let _ = p.cmd(&["services", "stop"]);
}
