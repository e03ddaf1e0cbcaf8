//! MySQL as MariaDB (or MySQL): `mariadb-install-db` once, then `mariadbd` with its own
//! datadir, socket and port on 127.0.0.1; the app's database and user are created from the
//! credentials. The server's root account authenticates by unix socket as the service user.

use std::process::Command;

use crate::services::ServiceError;
use crate::services::backend::{Backend, Ctx, Probe, run_tool};
use crate::services::probe;

pub(crate) struct Mysql;

fn sql_literal(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn sql_ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

impl Mysql {
    fn socket(ctx: &Ctx<'_>) -> std::path::PathBuf {
        ctx.paths.run.join("mysqld.sock")
    }

    /// A private temporary directory: MariaDB deletes every `#sql*` file in its tmpdir at
    /// start, so two instances sharing /tmp break each other.
    fn tmpdir(ctx: &Ctx<'_>) -> Result<std::path::PathBuf, ServiceError> {
        let t = ctx.paths.run.join("tmp");
        ctx.paths.private_dir(&t)?;
        ctx.run_as.own(&t)?;
        Ok(t)
    }
}

impl Backend for Mysql {
    fn kind(&self) -> &'static str {
        "mysql"
    }

    fn product(&self) -> &'static str {
        "MariaDB (for mysql)"
    }

    fn packages(&self) -> (&'static str, &'static str, &'static str) {
        ("mariadb-server", "mariadb-server", "mariadb")
    }

    fn programs(&self) -> &'static [&'static [&'static str]] {
        &[
            &["mariadbd", "mysqld"],
            &["mariadb-install-db", "mysql_install_db"],
            &["mariadb", "mysql"],
        ]
    }

    fn initialized(&self, ctx: &Ctx<'_>) -> bool {
        ctx.paths.data.join("mysql").join("db.frm").is_file()
            || ctx.paths.data.join("mysql").join("user.frm").is_file()
            || ctx
                .paths
                .data
                .join("mysql")
                .join("global_priv.frm")
                .is_file()
    }

    fn init(&self, ctx: &Ctx<'_>) -> Result<(), ServiceError> {
        // `ctx.paths.data` is a fresh temporary directory (see `lifecycle::init_atomically`).
        let mut c = ctx.command("mariadb-install-db");
        c.arg("--no-defaults")
            .arg(format!("--datadir={}", ctx.paths.data.display()))
            .arg(format!("--tmpdir={}", Self::tmpdir(ctx)?.display()))
            .arg("--auth-root-authentication-method=socket")
            .arg(format!("--auth-root-socket-user={}", ctx.run_as.name))
            .arg("--skip-test-db")
            .arg("--skip-name-resolve")
            .current_dir(&ctx.paths.run);
        run_tool(
            c,
            None,
            "initialise the MariaDB data directory (mariadb-install-db)",
        )?;
        Ok(())
    }

    fn server(&self, ctx: &Ctx<'_>) -> Result<Command, ServiceError> {
        let mut c = ctx.command("mariadbd");
        c.arg("--no-defaults")
            .arg(format!("--datadir={}", ctx.paths.data.display()))
            .arg(format!("--tmpdir={}", Self::tmpdir(ctx)?.display()))
            .arg(format!("--port={}", ctx.port))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--socket={}", Self::socket(ctx).display()))
            .arg(format!(
                "--pid-file={}",
                ctx.paths.run.join("mysqld.pid").display()
            ))
            .arg("--skip-name-resolve")
            .arg("--innodb-buffer-pool-size=32M")
            .arg("--innodb-log-file-size=16M")
            .arg("--max-connections=100")
            .current_dir(&ctx.paths.run);
        Ok(c)
    }

    fn probe(&self, ctx: &Ctx<'_>) -> Probe {
        probe::mysql(ctx.port)
    }

    fn provision(&self, ctx: &Ctx<'_>) -> Result<(), ServiceError> {
        let (user, pass, db) = (ctx.cred("user"), ctx.cred("password"), ctx.cred("name"));
        let mut sql = format!("CREATE DATABASE IF NOT EXISTS {};\n", sql_ident(&db));
        for host in ["%", "localhost"] {
            let who = format!("{}@{}", sql_literal(&user), sql_literal(host));
            sql.push_str(&format!(
                "CREATE USER IF NOT EXISTS {who} IDENTIFIED BY {p};\n\
                 ALTER USER {who} IDENTIFIED BY {p};\n\
                 GRANT ALL PRIVILEGES ON {d}.* TO {who};\n",
                p = sql_literal(&pass),
                d = sql_ident(&db),
            ));
        }
        sql.push_str("FLUSH PRIVILEGES;\n");
        let mut c = ctx.command("mariadb");
        // The install created an account named after the service user, authenticated by the
        // unix socket (the OS user must match), with all privileges.
        c.arg("--no-defaults")
            .arg(format!("-u{}", ctx.run_as.name))
            .arg(format!("--socket={}", Self::socket(ctx).display()));
        run_tool(
            c,
            Some(&sql),
            "create the application's MariaDB database and user",
        )?;
        Ok(())
    }

    fn clean_stale(&self, ctx: &Ctx<'_>) {
        let _ = std::fs::remove_file(Self::socket(ctx));
        let _ = std::fs::remove_file(ctx.paths.run.join("mysqld.sock.lock"));
        let _ = std::fs::remove_file(ctx.paths.run.join("mysqld.pid"));
    }

    fn shell(&self, ctx: &Ctx<'_>) -> Option<Command> {
        let mut c = Command::new(ctx.bins.get("mariadb"));
        c.arg("--no-defaults")
            .arg("--protocol=tcp")
            .arg("-h127.0.0.1")
            .arg(format!("-P{}", ctx.port))
            .arg(format!("-u{}", ctx.cred("user")))
            .arg(ctx.cred("name"))
            .env("MYSQL_PWD", ctx.cred("password"));
        Some(c)
    }
}
