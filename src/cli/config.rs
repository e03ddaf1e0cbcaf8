//! `stackato-local config`: the normalised manifest, as a readable summary or as the JSON the
//! client's `debug-manifest` printed, or the per-app manifest a push uploaded (its
//! `debug-upload-manifest`).

use std::io::Write;

use crate::cli::upload_files;
use crate::cli::{Global, print_diagnostics, report_load_error, terminal_asker};
use crate::diag::display_path;
use crate::exit;
use crate::manifest::upload::{self, Api};
use crate::manifest::{self, App, LoadError, model::Web};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Print JSON: {"manifest_file": …, "manifest": {"applications": {NAME: {…}}}}, raw text
    /// values as the client kept them.
    #[arg(long)]
    pub json: bool,
    /// Only this application.
    #[arg(long, value_name = "NAME")]
    pub app: Option<String>,
    /// With --json: the manifest.yml `stackato push` would upload for application APP to a
    /// target of API version API (1: CF v1, Stackato 2.x; 2: CF v2, Stackato 3.x), as the
    /// client's `debug-upload-manifest` printed it.
    #[arg(
        long,
        num_args = 2,
        value_names = ["API", "APP"],
        requires = "json",
        conflicts_with = "app"
    )]
    pub upload_manifest: Option<Vec<String>>,
    /// List, per application, the files a push would upload (the app directory minus
    /// `ignores:` or the default list), then what was dropped and by which pattern, links
    /// the client would refuse and entries skipped for their type.
    #[arg(long, conflicts_with = "upload_manifest")]
    pub upload_files: bool,
}

/// `--upload-manifest API APP`, checked.
fn upload_request(args: &Args) -> Result<Option<(Api, &str)>, upload::BadApi> {
    match args.upload_manifest.as_deref() {
        Some([api, app]) => Ok(Some((api.parse()?, app.as_str()))),
        _ => Ok(None),
    }
}

pub(super) fn run(g: &Global, args: &Args) -> i32 {
    let upload = match upload_request(args) {
        Ok(u) => u,
        Err(e) => {
            eprintln!("error: --upload-manifest: {e}");
            return exit::USAGE;
        }
    };
    let mut asker = terminal_asker();
    let loaded = match manifest::load(&g.load, &mut asker) {
        Ok(l) => l,
        Err(e @ LoadError::NotFound { .. }) if upload.is_some() => {
            // As the client: the app must be in the manifest, and there is none.
            let app = upload.map_or("", |(_, a)| a);
            eprintln!("error: Failed to find '{app}' in manifest.\nhelp: {e}");
            return exit::NO_MANIFEST;
        }
        Err(LoadError::NotFound { dir, skipped }) => {
            // As the client: a warning, not a failure.
            let mut err = anstream::stderr();
            for s in &skipped {
                let _ = writeln!(err, "note: {s}");
            }
            let _ = writeln!(
                err,
                "warning: No manifest: no stackato.yml in {}, no manifest.yml there or above.\nNo configuration found.",
                dir.display()
            );
            if args.json {
                let _ = writeln!(
                    std::io::stdout(),
                    "{}",
                    serde_json::json!({"manifest": {"applications": {}}})
                );
            }
            return exit::OK;
        }
        Err(e) => return report_load_error(g, &e),
    };
    print_diagnostics(g, &loaded.sources, &loaded.warnings);
    if let Some((api, app)) = upload {
        return print_upload(&loaded, api, app);
    }
    if args.upload_files {
        return upload_files::print(&loaded, args.app.as_deref(), args.json, g.ui.color_out);
    }
    let mut tree = loaded.tree.to_json();
    if let Some(name) = &args.app {
        let Some(apps) = tree.get_mut("applications").and_then(|a| a.as_object_mut()) else {
            return exit::INTERNAL;
        };
        if !apps.contains_key(name) {
            let names: Vec<&String> = apps.keys().collect();
            eprintln!(
                "error: no application named \"{name}\" in {} (it has: {})",
                display_path(&loaded.file),
                names
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            return exit::USAGE;
        }
        apps.retain(|k, _| k == name);
    }
    if args.json {
        let out = serde_json::json!({
            "manifest_file": loaded.file.display().to_string(),
            "manifest": tree,
        });
        let text = serde_json::to_string_pretty(&out).unwrap_or_default();
        let _ = writeln!(std::io::stdout(), "{text}");
        return exit::OK;
    }
    let mut out = anstream::stdout();
    let apps: Vec<&App> = loaded
        .manifest
        .start_order()
        .into_iter()
        .filter(|a| args.app.as_ref().is_none_or(|n| *n == a.name.value))
        .collect();
    let _ = writeln!(
        out,
        "{} — {} application{}{}",
        display_path(&loaded.file),
        apps.len(),
        if apps.len() == 1 { "" } else { "s" },
        if apps.len() > 1 { " (start order)" } else { "" }
    );
    for a in apps {
        let _ = write!(out, "{}", summary(a, g.ui.color_out));
    }
    exit::OK
}

/// `--json --upload-manifest API APP`: the wrapper of `--json` around the upload manifest.
fn print_upload(loaded: &manifest::Loaded, api: Api, app: &str) -> i32 {
    let dir = manifest::manifest_dir(&loaded.file);
    match upload::build(&loaded.tree, &dir, app, api) {
        Ok(tree) => {
            let out = serde_json::json!({
                "manifest_file": loaded.file.display().to_string(),
                "manifest": tree.to_json(),
            });
            let text = serde_json::to_string_pretty(&out).unwrap_or_default();
            let _ = writeln!(std::io::stdout(), "{text}");
            exit::OK
        }
        Err(e) => {
            let upload::UploadError::UnknownApp { known, .. } = &e;
            eprintln!(
                "error: {e}\nhelp: {} defines: {}",
                display_path(&loaded.file),
                known.join(", ")
            );
            exit::USAGE
        }
    }
}

fn summary(a: &App, color: bool) -> String {
    let bold = anstyle::Style::new().bold();
    let (b, r) = if color {
        (bold.render().to_string(), bold.render_reset().to_string())
    } else {
        (String::new(), String::new())
    };
    let mut s = format!("\n{b}{}{r}  {}\n", a.name.value, display_path(&a.path));
    let mut row = |k: &str, v: String| {
        if !v.is_empty() {
            s.push_str(&format!("  {k:<12} {v}\n"));
        }
    };
    if let Some(fw) = &a.framework {
        let mut v = fw.name.clone().unwrap_or_else(|| "?".into());
        if let Some(rt) = &a.runtime {
            v.push_str(&format!(" (runtime {rt})"));
        }
        row("framework", v);
    } else if let Some(bp) = &a.buildpack {
        row("buildpack", bp.clone());
    }
    let web = match &a.web {
        Web::Default => "framework default ($PROCESSES_WEB)".to_string(),
        Web::Command(c) => c.value.clone(),
        Web::Worker => format!(
            "none (worker): {}",
            a.command.as_ref().map_or("", |c| c.value.as_str())
        ),
    };
    row("web", web);
    if let (Some(c), false) = (&a.command, a.web == Web::Worker) {
        row("command", c.value.clone());
    }
    let mem = match &a.memory_mb {
        Some(_) => format!("{}M", a.memory_limit_mb()),
        None => format!("{}M (default)", a.memory_limit_mb()),
    };
    row(
        "resources",
        format!(
            "{} instance{}, memory {mem}, disk {}M",
            a.instance_count(),
            if a.instance_count() == 1 { "" } else { "s" },
            a.disk_limit_mb()
        ),
    );
    row(
        "services",
        a.services
            .iter()
            .map(|sv| match &sv.kind {
                Some(k) => format!("{} ({})", sv.name.value, k.value),
                None => format!("{} (existing)", sv.name.value),
            })
            .collect::<Vec<_>>()
            .join(", "),
    );
    row(
        "env",
        a.env
            .iter()
            .map(|e| match (&e.default, e.required) {
                (Some(d), _) if !e.hidden => format!("{}={}", e.name.value, d.value),
                (Some(_), _) => format!("{}=(hidden)", e.name.value),
                (None, true) => format!("{} (required)", e.name.value),
                (None, false) => e.name.value.clone(),
            })
            .collect::<Vec<_>>()
            .join(", "),
    );
    let hooks = [
        ("pre-push", &a.hooks.pre_push),
        ("pre-staging", &a.hooks.pre_staging),
        ("post-staging", &a.hooks.post_staging),
        ("pre-running", &a.hooks.pre_running),
    ];
    let mut first = true;
    for (k, list) in hooks {
        for (i, h) in list.iter().enumerate() {
            let stage = if i == 0 {
                format!("{k}: ")
            } else {
                " ".repeat(k.len() + 2)
            };
            let cmd = if h.ignore_failure {
                format!("{} (failure ignored)", h.command)
            } else {
                h.command.clone()
            };
            let label = if first { "hooks" } else { "" };
            first = false;
            s.push_str(&format!("  {label:<12} {stage}{cmd}\n"));
        }
    }
    let mut row = |k: &str, v: String| {
        if !v.is_empty() {
            s.push_str(&format!("  {k:<12} {v}\n"));
        }
    };
    let r = &a.requirements;
    let mut req: Vec<String> = Vec::new();
    for (k, v) in [
        ("pip", &r.pip),
        ("pypm", &r.pypm),
        ("ppm", &r.ppm),
        ("cpan", &r.cpan),
    ] {
        if !v.is_empty() {
            req.push(format!("{k}: {}", v.join(" ")));
        }
    }
    row("requirements", req.join("; "));
    row(
        "cron",
        a.cron
            .iter()
            .map(|c| c.value.clone())
            .collect::<Vec<_>>()
            .join(" | "),
    );
    row(
        "urls",
        match &a.urls {
            None => "default".into(),
            Some(u) if u.is_empty() => "none".into(),
            Some(u) => u.join(", "),
        },
    );
    row(
        "depends-on",
        a.depends_on
            .iter()
            .map(|d| d.value.clone())
            .collect::<Vec<_>>()
            .join(", "),
    );
    if let Some(i) = &a.ignores {
        row(
            "ignores",
            if i.is_empty() {
                "nothing".into()
            } else {
                i.join(" ")
            },
        );
    }
    let mv = &a.min_version;
    let mut v = Vec::new();
    if let Some(c) = &mv.client {
        v.push(format!("client {}", c.value));
    }
    if let Some(c) = &mv.server {
        v.push(format!("server {}", c.value));
    }
    row("min_version", v.join(", "));
    if let Some(t) = &a.timeout {
        row("timeout", format!("{}s", t.value));
    }
    s
}
