//! memcached: `memcached -l 127.0.0.1 -p PORT`, UDP off. A cache: nothing to keep.

use std::process::Command;

use crate::services::ServiceError;
use crate::services::backend::{Backend, Ctx, Probe};
use crate::services::probe;

pub(crate) struct Memcached;

impl Backend for Memcached {
    fn kind(&self) -> &'static str {
        "memcached"
    }

    fn product(&self) -> &'static str {
        "memcached"
    }

    fn packages(&self) -> (&'static str, &'static str, &'static str) {
        ("memcached", "memcached", "memcached")
    }

    fn programs(&self) -> &'static [&'static [&'static str]] {
        &[&["memcached"]]
    }

    fn initialized(&self, _ctx: &Ctx<'_>) -> bool {
        true
    }

    fn init(&self, _ctx: &Ctx<'_>) -> Result<(), ServiceError> {
        Ok(())
    }

    fn server(&self, ctx: &Ctx<'_>) -> Result<Command, ServiceError> {
        let mut c = ctx.command("memcached");
        c.args(["-l", "127.0.0.1", "-p"])
            .arg(ctx.port.to_string())
            .args(["-U", "0", "-m", "64", "-c", "1024"])
            .current_dir(&ctx.paths.run);
        Ok(c)
    }

    fn probe(&self, ctx: &Ctx<'_>) -> Probe {
        probe::memcached(ctx.port)
    }

    fn stop_signal(&self) -> nix::sys::signal::Signal {
        // memcached's graceful stop waits a second or more for its threads; a cache has
        // nothing to save, so it is stopped at once.
        nix::sys::signal::Signal::SIGKILL
    }

    fn shell(&self, _ctx: &Ctx<'_>) -> Option<Command> {
        None
    }
}
