//! The apps of a round behind the router: the route table's apps (host names, how long a
//! request waits, the access log's prefix), each routed web instance's place in it, and its
//! second port, with the environment and command that name it, for overlap restarts.

use std::path::Path;

use crate::platform::web::expand;

use crate::plan::Plan;
use crate::router::table::AppSpec;
use crate::supervise::{self, child::AltPort};

/// Variables that are exactly the instance's port.
const PORT_VARS: &[&str] = &["PORT", "VCAP_APP_PORT"];
/// Variables holding a command line that names the port (`--http-socket 127.0.0.1:PORT`,
/// `--port PORT`).
const COMMAND_VARS: &[&str] = &["STACKATO_UWSGI", "PROCESSES_WEB"];

/// `env` and `command` of an instance on port `old`, moved to port `new`: the port variables,
/// `VCAP_APPLICATION`'s `port`/`lxcport`, and the port in the default commands (a whole
/// number after `:`, `=` or a space). `None` when `old == new`.
pub(crate) fn alt_port(
    env: &[(String, String)],
    command: &str,
    old: u16,
    new: u16,
) -> Option<AltPort> {
    if old == new {
        return None;
    }
    let (o, n) = (old.to_string(), new.to_string());
    let env = env
        .iter()
        .map(|(k, v)| {
            let v = if PORT_VARS.contains(&k.as_str()) && *v == o {
                n.clone()
            } else if k == "VCAP_APPLICATION" {
                vcap_port(v, old, new)
            } else if COMMAND_VARS.contains(&k.as_str()) {
                replace_port(v, &o, &n)
            } else {
                v.clone()
            };
            (k.clone(), v)
        })
        .collect();
    Some(AltPort {
        port: new,
        env,
        command: replace_port(command, &o, &n),
    })
}

/// `VCAP_APPLICATION` with its `port` and `lxcport` moved (unchanged if it is not JSON).
fn vcap_port(v: &str, old: u16, new: u16) -> String {
    let Ok(mut json) = serde_json::from_str::<serde_json::Value>(v) else {
        return v.to_string();
    };
    if let Some(o) = json.as_object_mut() {
        for k in ["port", "lxcport"] {
            if o.get(k).and_then(serde_json::Value::as_u64) == Some(u64::from(old)) {
                o.insert(k.into(), new.into());
            }
        }
    }
    json.to_string()
}

/// `text` with each whole number `old` that follows `:`, `=` or a space replaced by `new`.
fn replace_port(text: &str, old: &str, new: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(old) {
        let before = rest[..at].chars().next_back();
        let after = rest[at + old.len()..].chars().next();
        let whole = matches!(before, Some(':' | '=' | ' ' | '\t'))
            && !after.is_some_and(|c| c.is_ascii_digit());
        out.push_str(&rest[..at]);
        out.push_str(if whole { new } else { old });
        rest = &rest[at + old.len()..];
    }
    out.push_str(rest);
    out
}

/// Whether `command` (run with `env`) serves HTTP with uWSGI's `--http-socket` (or `--socket`
/// with `--protocol http`, or `$UWSGI_HTTP_SOCKET`), which answers HTTP/1.1 without
/// `Connection: close` and then closes the connection (`--http11-socket` keeps it open;
/// `--http-keepalive` is the HTTP router's and does not). The variables it names
/// (`$STACKATO_UWSGI`, `$PROCESSES_WEB`, the app's own) are looked through, and the uWSGI
/// config files it names (`--ini F`, `uwsgi app.ini`; relative to `dirs`, the first that
/// has it).
fn closes_kept_connections(command: &str, env: &[(String, String)], dirs: &[&Path]) -> bool {
    let vars: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    // Twice: `$PROCESSES_WEB` may itself name `$STACKATO_UWSGI`.
    let text = expand(&expand(command, &vars), &vars);
    let words: Vec<&str> = text.split_whitespace().collect();
    let has = |opt: &str| {
        words
            .iter()
            .any(|w| *w == opt || w.strip_prefix(opt).is_some_and(|r| r.starts_with('=')))
    };
    let http_protocol =
        words.contains(&"--protocol=http") || words.windows(2).any(|w| w == ["--protocol", "http"]);
    text.contains("uwsgi")
        && (has("--http-socket")
            || (has("--socket") && http_protocol)
            || env.iter().any(|(k, _)| k == "UWSGI_HTTP_SOCKET")
            || words
                .iter()
                .filter_map(|w| config_file(w, &vars))
                .any(|f| config_has_http_socket(&f, dirs)))
}

/// The uWSGI config file a word of a command names (`--ini=F`, `F.ini`, `F.yaml:section`,
/// `$HOME/F.json`), its variables put in from `env`.
fn config_file(word: &str, vars: &[(&str, &str)]) -> Option<String> {
    let word = word.trim_matches(|c| matches!(c, '"' | '\'' | ';'));
    let word = ["--ini=", "--yaml=", "--yml=", "--json="]
        .iter()
        .find_map(|p| word.strip_prefix(p))
        .unwrap_or(word);
    let path = expand(word, vars);
    let file = match path.rsplit_once(':') {
        Some((f, section)) if !section.contains('/') => f.to_string(),
        _ => path,
    };
    [".ini", ".yaml", ".yml", ".json"]
        .iter()
        .any(|e| file.ends_with(e) && !file.starts_with('-') && !file.contains("://"))
        .then_some(file)
}

/// Whether the config file `file` (relative to the first of `dirs` that has it) sets
/// `http-socket` (a regular file of at most 1 MiB; anything else is not read).
fn config_has_http_socket(file: &str, dirs: &[&Path]) -> bool {
    let text = dirs.iter().find_map(|d| {
        // An absolute `file` replaces `d`.
        let bytes = crate::fsx::read_capped(&d.join(file), true, 1 << 20).ok()?;
        Some(String::from_utf8_lossy(&bytes).into_owned())
    });
    text.is_some_and(|t| {
        t.lines()
            .filter(|l| !l.trim_start().starts_with([';', '#']))
            .any(|l| {
                l.match_indices("http-socket").any(|(at, key)| {
                    let before = l[..at].chars().next_back();
                    let after = l[at + key.len()..].trim_start_matches('"').trim_start();
                    !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                        && after.starts_with(['=', ':'])
                })
            })
    })
}

/// Give the routed web instances of `sp` (built from `plan`, of `manifest`) their app's place
/// in the route table, which it fills; overlap restarts for them unless `stop_first` names
/// their app (or they have no second port). `domain`: of the default URLs. Returns notes
/// for the user: URLs the router cannot serve, names an earlier app has.
pub(crate) fn finish(
    sp: &mut supervise::Plan,
    plan: &Plan<'_>,
    manifest: &crate::manifest::model::Manifest,
    domain: &str,
    router: bool,
    stop_first: &[String],
) -> Vec<String> {
    sp.routes.clear();
    let names = crate::platform::routes::of_manifest(manifest, domain);
    let mut notes = Vec::new();
    for (g, a) in plan.apps.iter().enumerate() {
        let Some(specs) = sp.groups.get_mut(g) else {
            continue;
        };
        if !router || !specs.iter().any(|s| s.route.is_some()) {
            for s in specs.iter_mut() {
                s.route = None;
            }
            continue;
        }
        let app = a.app;
        let place = sp.routes.len();
        let own = names
            .iter()
            .find(|(n, _)| *n == app.name.value)
            .map(|(_, n)| n.clone())
            .unwrap_or_default();
        for (host, other) in &own.shared {
            notes.push(format!(
                "note: {}: {host} is also a URL of {other}, which comes first: it goes to {other}",
                app.name.value
            ));
        }
        for url in &own.unusable {
            notes.push(format!(
                "note: {}: the URL `{}` is not a host name the router can serve (ASCII letters, digits and `-` only); it is left out",
                app.name.value,
                crate::trust::display::escape(url)
            ));
        }
        sp.routes.push(AppSpec {
            name: app.name.value.clone(),
            hosts: own.hosts(),
            timeout: std::time::Duration::from_secs(
                app.timeout.as_ref().map_or(60, |t| u64::from(t.value)),
            ),
            log_name: if plan.multi {
                format!("{}:router", app.name.value)
            } else {
                "router".to_string()
            },
            // Its instances run one command (their ports aside): the first one tells.
            fresh_connections: specs
                .iter()
                .find(|s| s.route.is_some())
                .is_some_and(|s| closes_kept_connections(&s.command, &s.env, &[&s.cwd, &s.source])),
        });
        let overlap = !stop_first.contains(&app.name.value);
        for s in specs.iter_mut() {
            if let Some(r) = s.route.as_mut() {
                r.app = place;
                s.overlap = overlap && s.alt.is_some();
            }
        }
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uwsgi_http_socket_is_known_to_close_kept_connections() {
        let env: Vec<(String, String)> = vec![
            (
                "STACKATO_UWSGI".into(),
                "/v/bin/uwsgi --http-socket 127.0.0.1:5000 --master".into(),
            ),
            ("PROCESSES_WEB".into(), "$STACKATO_UWSGI".into()),
        ];
        for command in [
            "$STACKATO_UWSGI",
            "exec ${STACKATO_UWSGI} --static-map /s=static",
            "$PROCESSES_WEB",
            "uwsgi --http-socket=:$PORT --wsgi-file app.py",
        ] {
            assert!(closes_kept_connections(command, &env, &[]), "{command}");
        }
        for command in [
            "python app.py",
            "uwsgi --http11-socket :$PORT --wsgi-file app.py",
            "uwsgi --http :$PORT --wsgi-file app.py",
            // The variable is set but not used.
            "gunicorn app:app",
        ] {
            assert!(!closes_kept_connections(command, &env, &[]), "{command}");
        }
    }

    /// Forms uWSGI 2.0 serves as `--http-socket` does (checked against Debian's uWSGI 2.0.21):
    /// `--http-keepalive` is the HTTP router's option and does not keep these connections;
    /// `--socket` with `--protocol http`; the option given by uWSGI's own `UWSGI_*` variable.
    #[test]
    fn other_forms_of_uwsgi_http_socket_are_known_to_close_kept_connections() {
        let none: Vec<(String, String)> = Vec::new();
        for command in [
            "uwsgi --http-socket :$PORT --http-keepalive --wsgi-file app.py",
            "uwsgi --plugin http --http-socket=:$PORT --http-keepalive=1 --module app",
            "uwsgi --socket :$PORT --protocol=http --module app",
            "uwsgi --socket :$PORT --protocol http --module app",
        ] {
            assert!(closes_kept_connections(command, &none, &[]), "{command}");
        }
        // The app's own variable, and one naming another.
        let env: Vec<(String, String)> = vec![
            ("UWSGI_OPTS".into(), "--http-socket :$PORT --master".into()),
            ("WEB_CMD".into(), "uwsgi ${UWSGI_OPTS}".into()),
        ];
        for command in ["uwsgi $UWSGI_OPTS --module app", "$WEB_CMD --module app"] {
            assert!(closes_kept_connections(command, &env, &[]), "{command}");
        }
        let env = vec![("UWSGI_HTTP_SOCKET".to_string(), ":5000".to_string())];
        assert!(closes_kept_connections("uwsgi --module app", &env, &[]));
        assert!(!closes_kept_connections("gunicorn app:app", &env, &[]));
        assert!(!closes_kept_connections(
            "uwsgi --socket :$PORT --protocol uwsgi",
            &none,
            &[]
        ));
    }

    /// uWSGI's config files, as apps name them: `--ini`, `--yaml`, a bare `app.ini`, a
    /// `:section`, `$HOME`; the file read only when it is a regular file.
    #[test]
    fn an_http_socket_in_a_uwsgi_config_file_is_known_to_close_kept_connections() {
        let d = tempfile::tempdir().expect("tempdir");
        let w = |name: &str, text: &str| std::fs::write(d.path().join(name), text).expect("write");
        w(
            "uwsgi.ini",
            "[uwsgi]\nmaster = true\nhttp-socket = :$(PORT)\n",
        );
        w("prod.yaml", "uwsgi:\n  http-socket: 127.0.0.1:8080\n");
        w("app.json", "{\"uwsgi\": {\"http-socket\": \":8080\"}}\n");
        w(
            "plain.ini",
            "[uwsgi]\nhttp11-socket = :8080\nhttp = :8081\n",
        );
        nix::unistd::mkfifo(&d.path().join("fifo.ini"), nix::sys::stat::Mode::S_IRWXU)
            .expect("fifo");
        let env = vec![("HOME".to_string(), d.path().to_string_lossy().into_owned())];
        let dirs = [Path::new("/nonexistent"), d.path()];
        for command in [
            "uwsgi --ini uwsgi.ini",
            "/v/bin/uwsgi --ini=uwsgi.ini:uwsgi --processes 2",
            "uwsgi uwsgi.ini",
            "sh -c 'exec uwsgi --ini uwsgi.ini'",
            "uwsgi --yaml $HOME/prod.yaml",
            "uwsgi --json ${HOME}/app.json",
        ] {
            assert!(closes_kept_connections(command, &env, &dirs), "{command}");
        }
        for command in [
            "uwsgi --ini plain.ini",
            "uwsgi --ini fifo.ini",
            "uwsgi --ini missing.ini",
        ] {
            assert!(!closes_kept_connections(command, &env, &dirs), "{command}");
        }
    }

    #[test]
    fn the_second_port_replaces_the_first_where_it_names_the_port() {
        let env: Vec<(String, String)> = [
            ("PORT", "41234"),
            ("VCAP_APP_PORT", "41234"),
            (
                "VCAP_APPLICATION",
                r#"{"name":"a","port":41234,"lxcport":41234,"uris":["a.localhost:9000"]}"#,
            ),
            (
                "STACKATO_UWSGI",
                "/v/bin/uwsgi --http-socket 127.0.0.1:41234 --buffer-size=412340 --x 141234",
            ),
            ("PROCESSES_WEB", "plackup --port 41234 --app x"),
            ("DATABASE_URL", "postgres://u:p@127.0.0.1:41234/db"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let alt = alt_port(&env, "php -S 127.0.0.1:41234 -t x", 41234, 50001).expect("moved");
        let get = |k: &str| {
            alt.env
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(alt.port, 50001);
        assert_eq!(get("PORT"), Some("50001"));
        assert_eq!(get("VCAP_APP_PORT"), Some("50001"));
        let vcap: serde_json::Value =
            serde_json::from_str(get("VCAP_APPLICATION").expect("set")).expect("json");
        assert_eq!(vcap["port"], 50001);
        assert_eq!(vcap["lxcport"], 50001);
        assert_eq!(vcap["uris"][0], "a.localhost:9000");
        assert_eq!(
            get("STACKATO_UWSGI"),
            Some("/v/bin/uwsgi --http-socket 127.0.0.1:50001 --buffer-size=412340 --x 141234")
        );
        assert_eq!(get("PROCESSES_WEB"), Some("plackup --port 50001 --app x"));
        // Not the instance's port: a service's, even when equal.
        assert_eq!(
            get("DATABASE_URL"),
            Some("postgres://u:p@127.0.0.1:41234/db")
        );
        assert_eq!(alt.command, "php -S 127.0.0.1:50001 -t x");
        assert!(alt_port(&env, "x", 41234, 41234).is_none());
    }
}
