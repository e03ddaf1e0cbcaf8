//! RabbitMQ: Debian's `rabbitmq-server` as a private node per service: its own node name
//! (`rabbit-<hash>@localhost`), Mnesia directory, Erlang cookie (`$HOME` is the data
//! directory), AMQP port on 127.0.0.1, distribution port and epmd (on a port of its own, on
//! loopback, killed after the node stops), and a config file (0600) that creates the app's
//! user and vhost at first boot, so the system's own rabbit and other projects never collide.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::services::ServiceError;
use crate::services::backend::{Backend, Ctx, Probe, run_tool};
use crate::services::paths::ServicePaths;
use crate::services::{ports, probe};

pub(crate) struct Rabbitmq;

/// Debian's `/usr/sbin/rabbitmq*` are wrappers that insist on the `rabbitmq` user; the real
/// scripts are here.
const DEBIAN_SCRIPTS: &str = "/usr/lib/rabbitmq/bin";

/// The file that remembers the distribution and epmd ports of the running node.
const PORTS_FILE: &str = "rabbitmq.ports";

/// The program for `name`: Debian's real script when there, else what was found.
fn program(ctx: &Ctx<'_>, name: &str) -> PathBuf {
    let real = Path::new(DEBIAN_SCRIPTS).join(name);
    if ctx.bins.has(name)
        && real.is_file()
        && std::env::var_os("STACKATO_LOCAL_SERVER_PATH").is_none()
    {
        real
    } else {
        ctx.bins.get(name)
    }
}

/// Credentials go into the config file and onto `rabbitmqctl`'s command line: only plain
/// characters (the generated ones always are; a hand-edited registry may not be).
fn plain(field: &str, v: &str) -> Result<String, ServiceError> {
    if !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        Ok(v.to_string())
    } else {
        Err(ServiceError::Setup(format!(
            "the rabbitmq credential `{field}` in .stackato-local/services.json has characters other than letters, digits, `-`, `_` and `.`; `stackato-local services reset NAME` generates new ones"
        )))
    }
}

/// The node's distribution and epmd ports, as written when it was started.
fn read_ports(paths: &ServicePaths) -> Option<(u16, u16)> {
    let text = std::fs::read_to_string(paths.run.join(PORTS_FILE)).ok()?;
    let mut it = text.split_whitespace().map(|w| w.parse::<u16>().ok());
    Some((it.next()??, it.next()??))
}

impl Rabbitmq {
    fn node_name(paths: &ServicePaths) -> String {
        let h = crate::platform::env::stable_hex(&[&paths.data.display().to_string()], 12);
        format!("rabbit-{h}@localhost")
    }

    /// The environment every rabbitmq script of this node runs with.
    fn env(ctx: &Ctx<'_>, c: &mut Command, dist: u16, epmd: u16) {
        let run = &ctx.paths.run;
        let data = &ctx.paths.data;
        c.env("HOME", data)
            .env("RABBITMQ_NODENAME", Self::node_name(ctx.paths))
            .env("RABBITMQ_USE_LONGNAME", "false")
            .env("RABBITMQ_MNESIA_BASE", data.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", run)
            .env("RABBITMQ_LOGS", "-")
            .env("RABBITMQ_PID_FILE", run.join("rabbitmq.pid"))
            .env("RABBITMQ_CONFIG_FILE", run.join("rabbitmq.conf"))
            .env("RABBITMQ_ADVANCED_CONFIG_FILE", run.join("advanced.config"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", run.join("enabled_plugins"))
            .env("RABBITMQ_CONF_ENV_FILE", run.join("rabbitmq-env.conf"))
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", ctx.port.to_string())
            .env("RABBITMQ_DIST_PORT", dist.to_string())
            .env(
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS",
                "-kernel inet_dist_use_interface {127,0,0,1}",
            )
            .env("ERL_EPMD_PORT", epmd.to_string())
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            // The script then execs the VM (our pid is the server's) instead of waiting on it.
            .env("RUNNING_UNDER_SYSTEMD", "true")
            .current_dir(run);
    }

    fn write(ctx: &Ctx<'_>, name: &str, text: &str) -> Result<(), ServiceError> {
        let path = ctx.paths.run.join(name);
        crate::state::write_atomic(&path, text.as_bytes())?;
        ctx.run_as.own(&path)
    }

    fn ctl(ctx: &Ctx<'_>) -> Option<Command> {
        let (dist, epmd) = read_ports(ctx.paths)?;
        let mut c = Command::new(program(ctx, "rabbitmqctl"));
        ctx.run_as.apply(&mut c);
        c.stdin(std::process::Stdio::null());
        Self::env(ctx, &mut c, dist, epmd);
        Some(c)
    }
}

impl Backend for Rabbitmq {
    fn kind(&self) -> &'static str {
        "rabbitmq"
    }

    fn product(&self) -> &'static str {
        "RabbitMQ"
    }

    fn packages(&self) -> (&'static str, &'static str, &'static str) {
        ("rabbitmq-server", "rabbitmq-server", "rabbitmq")
    }

    fn programs(&self) -> &'static [&'static [&'static str]] {
        &[&["rabbitmq-server"], &["rabbitmqctl"], &["epmd"]]
    }

    fn has_version_flag(&self) -> bool {
        // `rabbitmq-server --version` starts a node.
        false
    }

    fn installed_version(&self) -> Option<String> {
        // Debian's layout: /usr/lib/rabbitmq/lib/rabbitmq_server-3.10.8.
        std::fs::read_dir("/usr/lib/rabbitmq/lib")
            .ok()?
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .find_map(|n| n.strip_prefix("rabbitmq_server-").map(str::to_string))
    }

    fn process_names(&self) -> &'static [&'static str] {
        // The script execs the Erlang VM.
        &["beam.smp", "beam", "rabbitmq-server"]
    }

    fn initialized(&self, ctx: &Ctx<'_>) -> bool {
        ctx.paths.data.is_dir()
    }

    fn init(&self, ctx: &Ctx<'_>) -> Result<(), ServiceError> {
        ctx.paths.private_dir(&ctx.paths.data)?;
        ctx.run_as.own(&ctx.paths.data)
    }

    fn server(&self, ctx: &Ctx<'_>) -> Result<Command, ServiceError> {
        let user = plain("username", &ctx.cred("username"))?;
        let pass = plain("password", &ctx.cred("password"))?;
        let vhost = plain("vhost", &ctx.cred("vhost"))?;
        let free = || {
            ports::free_port().map_err(|e| ServiceError::Io {
                what: "find a free port for the RabbitMQ node".into(),
                source: e,
            })
        };
        let (dist, epmd) = (free()?, free()?);
        // The user and vhost are created at the first boot (an empty database); the password
        // is only in this private file, never on a command line.
        Self::write(
            ctx,
            "rabbitmq.conf",
            &format!(
                "# written by stackato-local\n\
                 listeners.tcp.1 = 127.0.0.1:{port}\n\
                 default_user = {user}\n\
                 default_pass = {pass}\n\
                 default_vhost = {vhost}\n\
                 default_user_tags.administrator = true\n\
                 default_permissions.configure = .*\n\
                 default_permissions.read = .*\n\
                 default_permissions.write = .*\n\
                 loopback_users = none\n",
                port = ctx.port
            ),
        )?;
        Self::write(ctx, "enabled_plugins", "[].\n")?;
        Self::write(ctx, "advanced.config", "[].\n")?;
        Self::write(ctx, "rabbitmq-env.conf", "# written by stackato-local\n")?;
        Self::write(ctx, PORTS_FILE, &format!("{dist} {epmd}\n"))?;
        let mut c = Command::new(program(ctx, "rabbitmq-server"));
        ctx.run_as.apply(&mut c);
        c.stdin(std::process::Stdio::null());
        Self::env(ctx, &mut c, dist, epmd);
        Ok(c)
    }

    fn probe(&self, ctx: &Ctx<'_>) -> Probe {
        probe::amqp(ctx.port)
    }

    fn provision(&self, ctx: &Ctx<'_>) -> Result<(), ServiceError> {
        // The first boot created them; a data directory from before keeps its own.
        let user = plain("username", &ctx.cred("username"))?;
        let vhost = plain("vhost", &ctx.cred("vhost"))?;
        let Some(mut c) = Self::ctl(ctx) else {
            return Ok(());
        };
        c.args(["-q", "list_user_permissions", &user]);
        let out = run_tool(c, None, "check the RabbitMQ user (rabbitmqctl)")
            .map_err(|e| ServiceError::Setup(format!("{e}\nhint: `stackato-local services reset NAME` deletes the node's data and creates the user afresh")))?;
        if !out
            .lines()
            .any(|l| l.split_whitespace().next() == Some(vhost.as_str()))
        {
            return Err(ServiceError::Setup(format!(
                "the RabbitMQ node has no vhost {vhost} for user {user} (its data is older than its credentials); `stackato-local services reset NAME` starts it afresh"
            )));
        }
        Ok(())
    }

    fn after_stop(&self, paths: &ServicePaths) {
        // The node's own epmd outlives it; it has no other node (the port is private).
        let Some((_, epmd)) = read_ports(paths) else {
            return;
        };
        let Some(bin) = crate::programs::find("epmd") else {
            return;
        };
        let mut c = Command::new(bin);
        c.args(["-port", &epmd.to_string(), "-kill"])
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let _ = crate::process::status(&mut c, crate::process::Tie::Probe);
    }

    fn clean_stale(&self, ctx: &Ctx<'_>) {
        self.after_stop(ctx.paths);
        let _ = std::fs::remove_file(ctx.paths.run.join("rabbitmq.pid"));
    }

    fn shell(&self, _ctx: &Ctx<'_>) -> Option<Command> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::paths::RunAs;

    #[test]
    fn credentials_that_could_break_the_config_file_are_refused() {
        assert_eq!(
            plain("vhost", "6f1c-aa_b.c").ok().as_deref(),
            Some("6f1c-aa_b.c")
        );
        for bad in ["", "a b", "a\ndefault_user = x", "p=q", "x#y", "ü"] {
            assert!(plain("password", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn each_service_gets_its_own_stable_node_name() {
        let me = RunAs {
            name: "me".into(),
            uid: 1,
            gid: 1,
            drop_privileges: false,
        };
        let state = Path::new("/p/.stackato-local");
        let a = ServicePaths::new(state, "id", "mq", &me);
        let b = ServicePaths::new(state, "id", "other", &me);
        let na = Rabbitmq::node_name(&a);
        assert!(
            na.starts_with("rabbit-") && na.ends_with("@localhost"),
            "{na}"
        );
        assert_eq!(na, Rabbitmq::node_name(&a));
        assert_ne!(na, Rabbitmq::node_name(&b));
    }

    #[test]
    fn the_ports_file_is_read_strictly() {
        let t = tempfile::tempdir().expect("tempdir");
        let me = RunAs {
            name: "me".into(),
            uid: 1,
            gid: 1,
            drop_privileges: false,
        };
        let p = ServicePaths::new(t.path(), "id", "mq", &me);
        std::fs::create_dir_all(&p.run).expect("mkdir");
        assert_eq!(read_ports(&p), None);
        for (text, want) in [
            ("4000 4001\n", Some((4000, 4001))),
            ("4000\n", None),
            ("4000 99999\n", None),
            ("x y", None),
        ] {
            std::fs::write(p.run.join(PORTS_FILE), text).expect("write");
            assert_eq!(read_ports(&p), want, "{text:?}");
        }
    }
}
