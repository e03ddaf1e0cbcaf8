//! Elasticsearch (or an install of it found under `$ES_HOME` or `/usr/share/elasticsearch`):
//! one single-node cluster per service, HTTP on 127.0.0.1 only, its transport on another
//! loopback port, its config directory written by us in the run directory (so `/etc` is not
//! read), its data kept in the data directory. Elasticsearch refuses to run as root, so as
//! root it runs as the service user like the others. No credentials are checked: the free
//! distributions' security is turned off (it needs TLS certificates to be turned on), as the
//! platform's add-on had none; anyone who can reach 127.0.0.1:PORT can use it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::services::ServiceError;
use crate::services::backend::{Backend, Ctx, Probe};
use crate::services::{http, ports};

pub(crate) struct Elasticsearch;

/// The installation directory (`/usr/share/elasticsearch` for its `bin/elasticsearch`).
fn install_root(bin: &Path) -> PathBuf {
    let real = std::fs::canonicalize(bin).unwrap_or_else(|_| bin.to_path_buf());
    real.parent().and_then(Path::parent).map_or_else(
        || PathBuf::from("/usr/share/elasticsearch"),
        Path::to_path_buf,
    )
}

/// `elasticsearch.yml` for one service. `xpack` says whether the install has X-Pack (whose
/// security is on by default from 8.0 and must be turned off without certificates); the
/// open-source builds refuse the `xpack.*` settings.
fn config(data: &Path, logs: &Path, port: u16, transport: u16, id: &str, xpack: bool) -> String {
    let mut s = format!(
        "# written by stackato-local at every start\n\
         cluster.name: stackato-local-{id}\n\
         node.name: node-{id}\n\
         path.data: {}\n\
         path.logs: {}\n\
         network.host: 127.0.0.1\n\
         http.port: {port}\n\
         transport.port: {transport}\n\
         discovery.type: single-node\n",
        data.display(),
        logs.display()
    );
    if xpack {
        s.push_str("xpack.security.enabled: false\nxpack.ml.enabled: false\n");
    }
    s
}

/// Log to stdout (our `server.log`) only.
const LOG4J2: &str = "status = error\n\
appender.console.type = Console\n\
appender.console.name = console\n\
appender.console.layout.type = PatternLayout\n\
appender.console.layout.pattern = [%d{ISO8601}][%-5p][%-25c{1.}] %marker%m%n\n\
rootLogger.level = info\n\
rootLogger.appenderRef.console.ref = console\n";

impl Elasticsearch {
    fn write(ctx: &Ctx<'_>, path: &Path, text: &str) -> Result<(), ServiceError> {
        crate::state::write_atomic(path, text.as_bytes())?;
        ctx.run_as.own(path)
    }
}

impl Backend for Elasticsearch {
    fn kind(&self) -> &'static str {
        "elasticsearch"
    }

    fn product(&self) -> &'static str {
        "Elasticsearch"
    }

    fn packages(&self) -> (&'static str, &'static str, &'static str) {
        ("elasticsearch", "elasticsearch", "elasticsearch")
    }

    fn programs(&self) -> &'static [&'static [&'static str]] {
        &[&["elasticsearch"]]
    }

    fn process_names(&self) -> &'static [&'static str] {
        // The script execs the JVM.
        &["java", "elasticsearch"]
    }

    fn initialized(&self, ctx: &Ctx<'_>) -> bool {
        ctx.paths.data.is_dir()
    }

    fn init(&self, ctx: &Ctx<'_>) -> Result<(), ServiceError> {
        ctx.paths.private_dir(&ctx.paths.data)?;
        ctx.run_as.own(&ctx.paths.data)
    }

    fn server(&self, ctx: &Ctx<'_>) -> Result<Command, ServiceError> {
        let run = &ctx.paths.run;
        let (conf, logs, tmp) = (run.join("config"), run.join("logs"), run.join("tmp"));
        for d in [&conf, &logs, &tmp] {
            ctx.paths.private_dir(d)?;
            ctx.run_as.own(d)?;
        }
        let root = install_root(&ctx.bins.get("elasticsearch"));
        let xpack = root.join("modules/x-pack-core").is_dir();
        let transport = ports::free_port().map_err(|e| ServiceError::Io {
            what: "find a free port for the Elasticsearch transport".into(),
            source: e,
        })?;
        let id = crate::platform::env::stable_hex(&[&ctx.paths.data.display().to_string()], 12);
        Self::write(
            ctx,
            &conf.join("elasticsearch.yml"),
            &config(&ctx.paths.data, &logs, ctx.port, transport, &id, xpack),
        )?;
        Self::write(
            ctx,
            &conf.join("jvm.options"),
            &format!("-Djava.io.tmpdir={}\n", tmp.display()),
        )?;
        Self::write(ctx, &conf.join("log4j2.properties"), LOG4J2)?;
        let mut c = ctx.command("elasticsearch");
        c.env("ES_PATH_CONF", &conf)
            .env("ES_TMPDIR", &tmp)
            .env("ES_JAVA_OPTS", "-Xms512m -Xmx512m")
            .env("HOME", run)
            .current_dir(run);
        Ok(c)
    }

    fn probe(&self, ctx: &Ctx<'_>) -> Probe {
        match http::request(
            ctx.port,
            "GET",
            "/_cluster/health",
            None,
            None,
            Duration::from_secs(2),
        ) {
            Ok(a) if a.status == 200 && !a.body.contains("\"red\"") => Probe::Ready,
            Ok(a) => Probe::NotYet(format!("cluster health: HTTP {} {}", a.status, a.body)),
            Err(e) => Probe::NotYet(format!("GET /_cluster/health: {e}")),
        }
    }

    fn shell(&self, _ctx: &Ctx<'_>) -> Option<Command> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_binds_loopback_and_turns_xpack_off_only_where_it_exists() {
        let c = config(Path::new("/d"), Path::new("/l"), 9201, 9301, "ab", true);
        for line in [
            "network.host: 127.0.0.1",
            "http.port: 9201",
            "transport.port: 9301",
            "path.data: /d",
            "discovery.type: single-node",
            "xpack.security.enabled: false",
        ] {
            assert!(c.lines().any(|l| l == line), "{line} in\n{c}");
        }
        let oss = config(Path::new("/d"), Path::new("/l"), 9201, 9301, "ab", false);
        assert!(!oss.contains("xpack"), "{oss}");
    }
}
