//! `cron:` entries: `NAME=value` assignments and 5-field schedules (`*`, `*/n`, `a-b`,
//! `a-b/n`, lists, month and weekday names, `@daily`-style shorthands), checked once a minute
//! on instance 0 (or every instance with `STACKATO_CRON_INSTANCES=all`), with the platform's
//! cron environment: only HOME, PATH, the whitelisted prefixes and the database URL variables.

/// One parsed crontab line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Line {
    Assign(String, String),
    Job(Schedule, String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Schedule {
    minute: Vec<bool>,
    hour: Vec<bool>,
    dom: Vec<bool>,
    month: Vec<bool>,
    dow: Vec<bool>,
    dom_star: bool,
    dow_star: bool,
}

const MONTHS: &[&str] = &[
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

fn field(s: &str, lo: u32, hi: u32, names: &[&str], name_base: u32) -> Result<Vec<bool>, String> {
    let mut set = vec![false; (hi + 1) as usize];
    let num = |t: &str| -> Result<u32, String> {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(t)) {
            return Ok(i as u32 + name_base);
        }
        t.parse::<u32>()
            .map_err(|_| format!("`{t}` is not a number"))
    };
    for part in s.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, st)) => (
                r,
                st.parse::<u32>()
                    .ok()
                    .filter(|v| *v > 0)
                    .ok_or_else(|| format!("bad step `{st}`"))?,
            ),
            None => (part, 1),
        };
        let (a, b) = if range == "*" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            (num(a)?, num(b)?)
        } else {
            let v = num(range)?;
            (v, if part.contains('/') { hi } else { v })
        };
        let (a, b) = (if a == 7 && hi == 7 { 0 } else { a }, b);
        if a < lo || b > hi || a > b {
            return Err(format!("`{part}` is outside {lo}-{hi}"));
        }
        let mut v = a;
        while v <= b {
            set[v as usize] = true;
            v += step;
        }
    }
    Ok(set)
}

/// Parse one cron entry.
pub(crate) fn parse(line: &str) -> Result<Line, String> {
    let t = line.trim();
    if let Some((k, v)) = t.split_once('=') {
        let k = k.trim();
        if !k.is_empty() && !k.contains(' ') && crate::manifest::validate::is_env_name(k) {
            return Ok(Line::Assign(k.to_string(), v.trim().to_string()));
        }
    }
    // Vixie cron's shorthands, as the platform's crontab accepted them.
    if let Some(rest) = t.strip_prefix('@') {
        let (name, command) = rest
            .split_once(char::is_whitespace)
            .map_or((rest, ""), |(n, c)| (n, c.trim()));
        let fields = match name.to_ascii_lowercase().as_str() {
            "yearly" | "annually" => "0 0 1 1 *",
            "monthly" => "0 0 1 * *",
            "weekly" => "0 0 * * 0",
            "daily" | "midnight" => "0 0 * * *",
            "hourly" => "0 * * * *",
            "reboot" => {
                return Err(
                    "`@reboot` is not supported: start-up commands belong in a pre-running hook"
                        .into(),
                );
            }
            _ => {
                return Err(format!(
                    "unknown schedule `@{name}` (cron knows @hourly, @daily, @weekly, @monthly, @yearly)"
                ));
            }
        };
        if command.is_empty() {
            return Err("a cron line needs a command after the schedule".into());
        }
        return parse(&format!("{fields} {command}"));
    }
    let mut it = t.split_whitespace();
    let fields: Vec<&str> = it.by_ref().take(5).collect();
    if fields.len() < 5 {
        return Err("a cron line needs five time fields and a command".into());
    }
    let rest: Vec<&str> = it.collect();
    if rest.is_empty() {
        return Err("a cron line needs a command after the five time fields".into());
    }
    // The command is the original text after the fifth field.
    let mut idx = 0;
    let mut seen = 0;
    let bytes = t.as_bytes();
    while seen < 5 && idx < bytes.len() {
        while idx < bytes.len() && bytes[idx].is_ascii_whitespace() {
            idx += 1;
        }
        while idx < bytes.len() && !bytes[idx].is_ascii_whitespace() {
            idx += 1;
        }
        seen += 1;
    }
    let command = t[idx..].trim().to_string();
    let mut dow = field(fields[4], 0, 7, DAYS, 0)?;
    if dow[7] {
        dow[0] = true;
    }
    Ok(Line::Job(
        Schedule {
            minute: field(fields[0], 0, 59, &[], 0)?,
            hour: field(fields[1], 0, 23, &[], 0)?,
            dom: field(fields[2], 1, 31, &[], 0)?,
            month: field(fields[3], 1, 12, MONTHS, 1)?,
            dow,
            dom_star: fields[2] == "*",
            dow_star: fields[4] == "*",
        },
        command,
    ))
}

/// A moment broken down as cron needs it, in local time (UTC plus the given offset).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tm {
    pub minute: u32,
    pub hour: u32,
    pub dom: u32,
    pub month: u32,
    pub dow: u32,
}

impl Tm {
    /// From a Unix time (seconds) and a UTC offset in seconds.
    pub(crate) fn from_unix(t: i64, offset: i64) -> Tm {
        let t = t + offset;
        let days = t.div_euclid(86_400);
        let secs = t.rem_euclid(86_400);
        let z = days + 719_468;
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        Tm {
            minute: ((secs / 60) % 60) as u32,
            hour: (secs / 3600) as u32,
            dom: d as u32,
            month: m as u32,
            dow: ((days + 4).rem_euclid(7)) as u32,
        }
    }
}

impl Schedule {
    pub(crate) fn matches(&self, tm: &Tm) -> bool {
        let day = match (self.dom_star, self.dow_star) {
            (false, false) => self.dom[tm.dom as usize] || self.dow[tm.dow as usize],
            _ => self.dom[tm.dom as usize] && self.dow[tm.dow as usize],
        };
        self.minute[tm.minute as usize]
            && self.hour[tm.hour as usize]
            && self.month[tm.month as usize]
            && day
    }
}

/// The environment cron jobs get: whitelisted names only, plus the crontab's assignments.
pub(crate) fn env(all: &[(String, String)], assigns: &[(String, String)]) -> Vec<(String, String)> {
    const PREFIXES: &[&str] = &[
        "PERL", "PYTHON", "STACKATO", "VCAP", "BUNDLE", "LEIN", "GEM", "RACK", "RAILS", "RUBY",
        "http",
    ];
    const NAMES: &[&str] = &[
        "HOME",
        "PATH",
        "DATABASE_URL",
        "MYSQL_URL",
        "POSTGRESQL_URL",
        "REDIS_URL",
        "MONGODB_URL",
        "RABBITMQ_URL",
    ];
    let hook_env: Vec<String> = all
        .iter()
        .find(|(k, _)| k == "STACKATO_HOOK_ENV")
        .map(|(_, v)| v.split(',').map(|s| s.trim().to_string()).collect())
        .unwrap_or_default();
    let mut out: Vec<(String, String)> = all
        .iter()
        .filter(|(k, _)| {
            NAMES.contains(&k.as_str())
                || PREFIXES.iter().any(|p| k.starts_with(p))
                || hook_env.contains(k)
        })
        .cloned()
        .collect();
    for (k, v) in assigns {
        out.retain(|(x, _)| x != k);
        out.push((k.clone(), v.clone()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tm(minute: u32, hour: u32, dom: u32, month: u32, dow: u32) -> Tm {
        Tm {
            minute,
            hour,
            dom,
            month,
            dow,
        }
    }

    #[test]
    fn schedules() {
        let Line::Job(s, cmd) = parse("*/15 * * * * echo hi > $HOME/x").unwrap() else {
            panic!()
        };
        assert_eq!(cmd, "echo hi > $HOME/x");
        assert!(s.matches(&tm(0, 3, 1, 1, 0)));
        assert!(s.matches(&tm(45, 3, 1, 1, 0)));
        assert!(!s.matches(&tm(7, 3, 1, 1, 0)));
        let Line::Job(s, _) = parse("0 1 * jan-mar mon-fri cmd").unwrap() else {
            panic!()
        };
        assert!(s.matches(&tm(0, 1, 5, 2, 3)));
        assert!(!s.matches(&tm(0, 1, 5, 2, 0)));
        assert!(!s.matches(&tm(0, 1, 5, 4, 3)));
        assert_eq!(
            parse("PLUGH=xyzzy").unwrap(),
            Line::Assign("PLUGH".into(), "xyzzy".into())
        );
        assert!(parse("* * *").is_err());
        assert!(parse("61 * * * * x").is_err());
        assert!(parse("*/0 * * * * x").is_err());
        assert_eq!(
            parse("@daily run it").unwrap(),
            parse("0 0 * * * run it").unwrap()
        );
        assert_eq!(parse("@weekly x").unwrap(), parse("0 0 * * sun x").unwrap());
        assert!(parse("@reboot x").is_err());
        assert!(parse("@daily").is_err());
        assert!(parse("@often x").is_err());
    }

    #[test]
    fn time_breakdown() {
        // 2013-01-01 00:26:40 UTC was a Tuesday.
        let t = Tm::from_unix(1_357_000_000, 0);
        assert_eq!((t.minute, t.hour, t.dom, t.month, t.dow), (26, 0, 1, 1, 2));
    }

    #[test]
    fn cron_env_is_whitelisted() {
        let all = vec![
            ("HOME".to_string(), "/h".to_string()),
            ("SECRET".to_string(), "x".to_string()),
            ("MEMCACHE_URL".to_string(), "h:1".to_string()),
            ("PYTHONPATH".to_string(), "/p".to_string()),
        ];
        let e = env(&all, &[("A".into(), "1".into())]);
        let names: Vec<&str> = e.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, vec!["HOME", "PYTHONPATH", "A"]);
    }
}
