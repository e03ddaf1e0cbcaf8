//! Perl at staging: `requirements: cpan:`/`ppm:` and a Perl app's requirements.txt installed
//! with cpanm into the project's `perl5/` (skipped with a note, and recorded as skipped, when
//! cpanm is missing).

use std::process::Command;

use crate::stage::requirements::requirement_error;
use crate::stage::{Outcome, Skip, StageError, Stager};

pub fn install(s: &Stager<'_>, outcome: &mut Outcome) -> Result<(), StageError> {
    let app = s.app;
    let mut mods: Vec<String> = app
        .requirements
        .cpan
        .iter()
        .chain(&app.requirements.ppm)
        .cloned()
        .collect();
    if let Ok(t) = std::fs::read_to_string(s.home.join("requirements.txt")) {
        mods.extend(
            t.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string),
        );
    }
    if mods.is_empty() {
        return Ok(());
    }
    let Some(cpanm) = crate::services::backend::which("cpanm") else {
        let msg = format!(
            "Perl modules not installed (cpanm is missing; `apt-get install cpanminus`): {}",
            mods.join(" ")
        );
        s.out.line(&s.prefix, &format!("-----> {msg}"));
        outcome.notes.push(msg);
        outcome
            .skipped
            .push(Skip::new("cpanm (Perl modules)", "cpanm"));
        return Ok(());
    };
    let local = s.state.path("perl5");
    s.out
        .line(&s.prefix, &format!("-----> cpanm {}", mods.join(" ")));
    let mut c = Command::new(cpanm);
    c.arg("--notest").arg("-l").arg(&local).args(&mods);
    let done = s.run(c);
    if done.ended.ok() {
        Ok(())
    } else {
        Err(requirement_error(
            "cpanm",
            done,
            "cpanm's own message is above",
        ))
    }
}
