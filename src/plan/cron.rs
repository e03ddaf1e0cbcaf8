//! An instance's cron jobs (`$HOME/crontab`, then the manifest's `cron:`) and the local
//! time's offset from UTC that their schedules follow.

use std::path::Path;

use crate::env::host::Host;
use crate::manifest::App;
use crate::manifest::cron::{self, Line};
use crate::output::Output;
use crate::supervise::CronJob;

/// The crontab of one instance: `$HOME/crontab`, then `cron:`; assignments apply to the jobs.
/// A line that does not parse is reported on `out` and left out.
pub(crate) fn cron_jobs(
    app: &App,
    host: Host,
    env: &[(String, String)],
    cwd: &Path,
    name: &str,
    out: &Output,
) -> Vec<CronJob> {
    let mut lines: Vec<String> = crate::platform::web::app_file(cwd, "crontab")
        .map(|t| {
            t.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    lines.extend(app.cron.iter().map(|c| c.value.clone()));
    let mut assigns = Vec::new();
    let mut jobs = Vec::new();
    for l in lines {
        match cron::parse(&l) {
            Ok(Line::Assign(k, v)) => assigns.push((k, v)),
            Ok(Line::Job(schedule, command)) => jobs.push((schedule, command)),
            Err(e) => out.error(&format!("cron entry `{l}` ignored: {e}")),
        }
    }
    let cenv = cron::env(env, &assigns);
    jobs.into_iter()
        .map(|(schedule, command)| CronJob {
            name: name.to_string(),
            schedule,
            command,
            env: cenv.clone(),
            cwd: cwd.to_path_buf(),
            host,
        })
        .collect()
}

/// Seconds east of UTC now, from the C library's local time (honours TZ).
pub(crate) fn utc_offset() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as libc::time_t);
    // SAFETY: localtime_r writes only into the tm we pass.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&now, &mut tm).is_null() {
            0
        } else {
            tm.tm_gmtoff
        }
    }
}
