//! PostgreSQL: `initdb` once, then `postgres` on 127.0.0.1 and a private unix socket; the
//! app's role and database are created from the credentials. Local socket connections are
//! trusted (the socket directory is 0700, the service user's); TCP needs the password.

use std::process::Command;

use crate::services::ServiceError;
use crate::services::backend::{Backend, Ctx, Probe, run_tool};
use crate::services::probe;

pub(crate) struct Postgres;

const SUPERUSER: &str = "postgres";

/// The first line of the pg_hba.conf we write, the last step of initialising.
const HBA_MARK: &str = "# written by stackato-local";

fn sql_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn sql_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

impl Postgres {
    fn psql(&self, ctx: &Ctx<'_>, db: &str) -> Command {
        let mut c = ctx.command("psql");
        c.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-t", "-A", "-h"])
            .arg(&ctx.paths.run)
            .arg("-p")
            .arg(ctx.port.to_string())
            .args(["-U", SUPERUSER, "-d", db]);
        c
    }
}

impl Backend for Postgres {
    fn kind(&self) -> &'static str {
        "postgresql"
    }

    fn product(&self) -> &'static str {
        "PostgreSQL"
    }

    fn packages(&self) -> (&'static str, &'static str, &'static str) {
        ("postgresql", "postgresql-server", "postgresql")
    }

    fn programs(&self) -> &'static [&'static [&'static str]] {
        &[&["postgres"], &["initdb"], &["psql"], &["pg_isready"]]
    }

    fn initialized(&self, ctx: &Ctx<'_>) -> bool {
        // initdb writes PG_VERSION first; our pg_hba.conf is the last thing written, so a data
        // directory whose initialisation was interrupted (by an earlier version, which did it
        // in place) is not taken for a complete one.
        let data = &ctx.paths.data;
        data.join("PG_VERSION").is_file()
            && data.join("global").join("pg_control").is_file()
            && crate::state::read_private(&data.join("pg_hba.conf"), 1 << 20)
                .is_ok_and(|t| t.starts_with(HBA_MARK.as_bytes()))
    }

    fn init(&self, ctx: &Ctx<'_>) -> Result<(), ServiceError> {
        // `ctx.paths.data` is a fresh temporary directory (see `lifecycle::init_atomically`).
        let mut c = ctx.command("initdb");
        c.arg("-D")
            .arg(&ctx.paths.data)
            .args([
                "-U",
                SUPERUSER,
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-instructions",
            ])
            .current_dir(&ctx.paths.run);
        run_tool(c, None, "initialise the PostgreSQL data directory (initdb)")?;
        // TCP from loopback only, with passwords; the socket is private.
        let hba = format!(
            "{HBA_MARK}\n\
             local all all trust\n\
             host all all 127.0.0.1/32 scram-sha-256\n\
             host all all ::1/128 scram-sha-256\n"
        );
        crate::state::write_atomic(&ctx.paths.data.join("pg_hba.conf"), hba.as_bytes())?;
        ctx.run_as.own(&ctx.paths.data.join("pg_hba.conf"))?;
        Ok(())
    }

    fn server(&self, ctx: &Ctx<'_>) -> Result<Command, ServiceError> {
        let mut c = ctx.command("postgres");
        c.arg("-D")
            .arg(&ctx.paths.data)
            .arg("-p")
            .arg(ctx.port.to_string())
            .args(["-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!(
                "unix_socket_directories={}",
                ctx.paths.run.display()
            ))
            .args(["-c", "unix_socket_permissions=0700"])
            .current_dir(&ctx.paths.run);
        Ok(c)
    }

    fn probe(&self, ctx: &Ctx<'_>) -> Probe {
        match probe::postgres_listening(ctx.port) {
            Probe::Ready => {}
            other => return other,
        }
        let mut c = ctx.command("pg_isready");
        c.arg("-h")
            .arg(&ctx.paths.run)
            .arg("-p")
            .arg(ctx.port.to_string())
            .args(["-U", SUPERUSER, "-d", "postgres", "-t", "1", "-q"])
            .current_dir(&ctx.paths.run)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        match crate::process::status(&mut c, crate::process::Tie::Group) {
            Ok(s) if s.success() => Probe::Ready,
            Ok(_) => Probe::NotYet("pg_isready: not accepting connections yet".into()),
            Err(e) => Probe::NotYet(format!("pg_isready: {e}")),
        }
    }

    fn provision(&self, ctx: &Ctx<'_>) -> Result<(), ServiceError> {
        let (user, pass, db) = (ctx.cred("user"), ctx.cred("password"), ctx.cred("name"));
        let sql = format!(
            "DO $$BEGIN\n\
               IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {u}) THEN\n\
                 CREATE ROLE {ui} LOGIN PASSWORD {p};\n\
               ELSE\n\
                 ALTER ROLE {ui} WITH LOGIN PASSWORD {p};\n\
               END IF;\n\
             END$$;\n\
             SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_database WHERE datname = {d})\n\
               THEN 'database-exists' ELSE 'database-missing' END;\n",
            u = sql_literal(&user),
            ui = sql_ident(&user),
            p = sql_literal(&pass),
            d = sql_literal(&db),
        );
        let out = run_tool(
            self.psql(ctx, "postgres"),
            Some(&sql),
            "create the application's PostgreSQL role",
        )?;
        if out.contains("database-missing") {
            // CREATE DATABASE cannot run inside the DO block's transaction.
            run_tool(
                self.psql(ctx, "postgres"),
                Some(&format!(
                    "CREATE DATABASE {} OWNER {};\n",
                    sql_ident(&db),
                    sql_ident(&user)
                )),
                "create the application's PostgreSQL database",
            )?;
        }
        Ok(())
    }

    fn stop_signal(&self) -> nix::sys::signal::Signal {
        // SIGINT is PostgreSQL's "fast" shutdown: clients are disconnected, data is flushed.
        nix::sys::signal::Signal::SIGINT
    }

    fn clean_stale(&self, ctx: &Ctx<'_>) {
        let _ = std::fs::remove_file(ctx.paths.data.join("postmaster.pid"));
        let sock = ctx.paths.run.join(format!(".s.PGSQL.{}", ctx.port));
        let _ = std::fs::remove_file(&sock);
        let _ = std::fs::remove_file(sock.with_extension(format!("{}.lock", ctx.port)));
    }

    fn shell(&self, ctx: &Ctx<'_>) -> Option<Command> {
        let mut c = Command::new(ctx.bins.get("psql"));
        c.arg("-h")
            .arg("127.0.0.1")
            .arg("-p")
            .arg(ctx.port.to_string())
            .arg("-U")
            .arg(ctx.cred("user"))
            .arg(ctx.cred("name"))
            .env("PGPASSWORD", ctx.cred("password"));
        Some(c)
    }
}
