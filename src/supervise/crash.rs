//! What an unexpected exit of a job's serving instance leads to: a failed pre-running hook
//! or `--exit-on-crash` ends the run; otherwise the [`health`] rule gives a restart after a
//! backoff or a flapping verdict (which ends the run unless files are watched).

use std::time::{Duration, Instant};

use super::Outcome;
use super::action::{Action, Level, Rules, World};
use super::health::{self, Verdict};

/// One exit.
pub(super) struct Crash<'a> {
    pub job: usize,
    pub name: &'a str,
    pub code: i32,
    /// How long it ran.
    pub ran: Duration,
    pub ready: bool,
    pub now: Instant,
}

pub(super) enum After {
    Restart(Duration),
    /// Down until a change or a restart request.
    Flapping,
    Stop(Outcome),
}

/// The verdict on `c`, recorded in `history`; what to say goes to `acts`.
pub(super) fn judge(
    c: &Crash<'_>,
    history: &mut Vec<health::Exit>,
    rules: &Rules,
    world: &dyn World,
    acts: &mut Vec<Action>,
) -> After {
    let (name, code, ran, now) = (c.name, c.code, c.ran, c.now);
    if code == super::child::HOOK_FAILED
        && let Some(why) = world.hook_failure(c.job)
    {
        let msg = format!("{name}: {why}");
        acts.push(Action::Say(Level::Error, msg.clone()));
        return After::Stop(Outcome::HookFailed(msg));
    }
    let help = world.hint(c.job);
    if rules.exit_on_crash {
        let msg = format!(
            "{name} exited with status {code} after {:.1} s (--exit-on-crash){help}",
            ran.as_secs_f64()
        );
        acts.push(Action::Say(Level::Error, msg.clone()));
        return After::Stop(Outcome::Crashed(msg));
    }
    let exit = health::Exit {
        at: now,
        ran,
        ready: c.ready,
    };
    health::record(history, exit);
    let (delay, crash_loop) = match health::verdict(history, now, &rules.policy) {
        Verdict::Restart { after, crash_loop } => (after, crash_loop),
        Verdict::Flapping(why) => {
            let tail = world.tail(c.job);
            let msg = health::flapping_message(name, why, code, &tail) + &help;
            acts.push(Action::Say(Level::Error, msg.clone()));
            if rules.watching {
                let next = "stays down until a file changes (or `stackato-local restart`)";
                acts.push(Action::Say(Level::Phase, format!("{name} {next}")));
                return After::Flapping;
            }
            return After::Stop(Outcome::Flapping(msg));
        }
    };
    acts.push(match crash_loop {
        Some(crashes) => Action::Say(
            Level::Error,
            format!(
                "{name} is in a crash loop: it exited {crashes} times in 2 minutes (status {code}); next restart in {} s. Last lines:\n    {}{help}",
                delay.as_secs(),
                world.tail(c.job)
            ),
        ),
        None => Action::Say(
            Level::Note,
            format!(
                "{name} exited with status {code} after {:.1} s; restarting in {} s",
                ran.as_secs_f64(),
                delay.as_secs()
            ),
        ),
    });
    After::Restart(delay)
}
