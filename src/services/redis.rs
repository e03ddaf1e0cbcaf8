//! redis: `redis-server` with its own directory and a config file (0600) holding the
//! password, listening on 127.0.0.1 only, with an append-only file so data survives restarts.

use std::process::Command;

use crate::services::ServiceError;
use crate::services::backend::{Backend, Ctx, Probe};
use crate::services::probe;

pub(crate) struct Redis;

impl Redis {
    fn conf(ctx: &Ctx<'_>) -> std::path::PathBuf {
        ctx.paths.run.join("redis.conf")
    }
}

impl Backend for Redis {
    fn kind(&self) -> &'static str {
        "redis"
    }

    fn product(&self) -> &'static str {
        "Redis"
    }

    fn packages(&self) -> (&'static str, &'static str, &'static str) {
        ("redis-server", "redis", "redis")
    }

    fn programs(&self) -> &'static [&'static [&'static str]] {
        &[&["redis-server"]]
    }

    fn initialized(&self, ctx: &Ctx<'_>) -> bool {
        ctx.paths.data.is_dir()
    }

    fn init(&self, ctx: &Ctx<'_>) -> Result<(), ServiceError> {
        ctx.paths.private_dir(&ctx.paths.data)?;
        ctx.run_as.own(&ctx.paths.data)
    }

    fn server(&self, ctx: &Ctx<'_>) -> Result<Command, ServiceError> {
        // The password goes in a private file, not on the command line (visible in `ps`).
        let conf = format!(
            "# written by stackato-local\n\
             port {port}\n\
             bind 127.0.0.1\n\
             protected-mode yes\n\
             dir {dir}\n\
             requirepass \"{pw}\"\n\
             appendonly yes\n\
             appendfsync everysec\n\
             save 60 1\n\
             daemonize no\n\
             logfile \"\"\n",
            port = ctx.port,
            dir = ctx.paths.data.display(),
            pw = ctx.cred("password").replace('"', "")
        );
        let path = Self::conf(ctx);
        crate::state::write_atomic(&path, conf.as_bytes())?;
        ctx.run_as.own(&path)?;
        let mut c = ctx.command("redis-server");
        c.arg(&path).current_dir(&ctx.paths.run);
        Ok(c)
    }

    fn probe(&self, ctx: &Ctx<'_>) -> Probe {
        probe::redis(ctx.port, &ctx.cred("password"))
    }

    fn shell(&self, ctx: &Ctx<'_>) -> Option<Command> {
        let mut c = Command::new(crate::programs::find("redis-cli")?);
        c.arg("-h")
            .arg("127.0.0.1")
            .arg("-p")
            .arg(ctx.port.to_string())
            .arg("--no-auth-warning")
            .env("REDISCLI_AUTH", ctx.cred("password"));
        Some(c)
    }
}
