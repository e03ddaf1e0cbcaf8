//! Masking secrets in anything we print: service passwords, `hidden: true` variables and
//! variables whose names say they are secret. `--reveal` turns it off.

use std::collections::HashSet;
use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, MatchKind};
use serde_json::Value;

use crate::model::EnvSet;
use crate::model::ServiceRecord;
use crate::platform::services::is_secret_field;

/// What a secret looks like once masked.
pub const MASK: &str = "********";

/// Secret strings to hide wherever they appear.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    /// In the order added, each once (`known` holds them too, for the duplicate check).
    values: Vec<String>,
    known: HashSet<String>,
    /// Variables whose whole value is secret, however short.
    names: HashSet<String>,
    /// The user part of URLs that have no password (`https://KEY@sentry.example/1`): in such
    /// a DSN the user part is the key. Masked where it is followed by `@`. Each once.
    users: Vec<String>,
    known_users: HashSet<String>,
    /// The searchers over `values` and `users`, built at the first `mask` after a change.
    matchers: OnceLock<Matchers>,
}

/// One searcher for all secret values and one for all `user@` parts: a text is masked in one
/// pass each, however many secrets there are (a dump may bring thousands).
#[derive(Debug, Clone)]
struct Matchers {
    values: Searcher,
    users: Searcher,
}

#[derive(Debug, Clone)]
enum Searcher {
    /// No patterns.
    Empty,
    Patterns(AhoCorasick),
    /// Too many or too long patterns for a searcher to be built.
    TooLarge,
}

impl Searcher {
    fn new(patterns: &[String]) -> Searcher {
        if patterns.is_empty() {
            return Searcher::Empty;
        }
        // Leftmost-longest: where secrets overlap, the one starting first is masked whole,
        // and of those starting at the same place the longest (a secret containing another).
        match AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(patterns)
        {
            Ok(ac) => Searcher::Patterns(ac),
            Err(_) => Searcher::TooLarge,
        }
    }

    /// Every occurrence in `text` of `patterns` (which the searcher was built from) replaced
    /// by `with`.
    fn replace(&self, patterns: &[String], text: &str, with: &str) -> String {
        match self {
            Searcher::Empty => text.to_string(),
            Searcher::Patterns(ac) => {
                let mut out = String::with_capacity(text.len());
                ac.replace_all_with(text, &mut out, |_, _, dst| {
                    dst.push_str(with);
                    true
                });
                out
            }
            // One replace per pattern, longest first: slow on many, never leaves one unmasked.
            Searcher::TooLarge => {
                let mut sorted: Vec<&String> = patterns.iter().collect();
                sorted.sort_by_key(|p| std::cmp::Reverse(p.len()));
                let mut out = text.to_string();
                for p in sorted {
                    if out.contains(p.as_str()) {
                        out = out.replace(p.as_str(), with);
                    }
                }
                out
            }
        }
    }
}

/// Variable names that hold secrets by convention. The one rule, on the name's words (split at
/// anything but letters and digits, case ignored):
/// - secret wherever they appear: PASSWORD, PASSWD, PASSPHRASE, SECRET, TOKEN, CREDENTIAL(S),
///   APIKEY, and the pairs API_KEY, PRIVATE_KEY;
/// - secret as the last word: PASS, PWD, AUTH, PAT, SK (`DB_PASS`, `SMTP_PWD`, `BASIC_AUTH`,
///   `GITHUB_PAT`, `STRIPE_SK`; `PWD` alone is the working directory and stays visible);
/// - the last two words SESSION_KEY, SIGNING_KEY, ENCRYPTION_KEY, MASTER_KEY, AUTH_KEY,
///   ACCOUNT_KEY.
///
/// Ordinary names whose words merely start like these (`PATH`, `PORT`, `AUTHOR`,
/// `PASSENGER_*`, `SSH_AUTH_SOCK`) are not secret.
pub fn is_secret_name(name: &str) -> bool {
    const ANYWHERE: &[&str] = &[
        "PASSWORD",
        "PASSWORDS",
        "PASSWD",
        "PASSPHRASE",
        "SECRET",
        "SECRETS",
        "TOKEN",
        "TOKENS",
        "CREDENTIAL",
        "CREDENTIALS",
        "CREDS",
        "APIKEY",
        "PRIVATEKEY",
    ];
    const LAST: &[&str] = &["PASS", "PWD", "AUTH", "PAT", "SK"];
    const PAIRS: &[[&str; 2]] = &[["API", "KEY"], ["PRIVATE", "KEY"]];
    const LAST_PAIRS: &[&str] = &[
        "SESSION",
        "SIGNING",
        "ENCRYPTION",
        "MASTER",
        "AUTH",
        "ACCOUNT",
    ];
    let upper = name.to_ascii_uppercase();
    let words: Vec<&str> = upper
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    // Names glued together (`MYSECRET`, `APITOKEN`) as the old substring rule found them.
    let glued = ["PASSWORD", "PASSWD", "SECRET", "TOKEN"]
        .iter()
        .any(|s| upper.contains(s));
    let last = words.last().copied().unwrap_or("");
    glued
        || words.iter().any(|w| ANYWHERE.contains(w))
        || words
            .windows(2)
            .any(|p| PAIRS.iter().any(|q| p[0] == q[0] && p[1] == q[1]))
        || (LAST.contains(&last) && !(words.len() == 1 && last == "PWD"))
        || (last == "KEY" && words.len() >= 2 && LAST_PAIRS.contains(&words[words.len() - 2]))
}

impl Secrets {
    pub fn new() -> Self {
        Secrets::default()
    }

    /// Add one secret (short strings are ignored: masking `1` everywhere helps nobody).
    pub fn add(&mut self, s: &str) {
        if s.len() >= 4 && !self.known.contains(s) {
            self.known.insert(s.to_string());
            self.values.push(s.to_string());
            self.matchers = OnceLock::new();
        }
    }

    /// Secrets inside a `VCAP_SERVICES` / `STACKATO_SERVICES` value from elsewhere (an
    /// `env diff` dump): secret credential fields, and the passwords in `url`/`uri` fields.
    /// Text that is not JSON adds nothing.
    pub fn add_json(&mut self, text: &str) {
        fn walk(v: &Value, secrets: &mut Secrets) {
            match v {
                Value::Object(m) => {
                    for (k, x) in m {
                        match x {
                            Value::String(s) if is_secret_field(k) => secrets.add(s),
                            Value::String(s) if k == "url" || k == "uri" => {
                                if let Some(pw) = url_password(s) {
                                    secrets.add(&pw);
                                }
                                secrets.add_url_user(s);
                            }
                            _ => walk(x, secrets),
                        }
                    }
                }
                Value::Array(a) => a.iter().for_each(|x| walk(x, secrets)),
                _ => {}
            }
        }
        if let Ok(j) = serde_json::from_str::<Value>(text) {
            walk(&j, self);
        }
    }

    /// Secret credential fields of services.
    pub(crate) fn add_services(&mut self, records: &[ServiceRecord]) {
        for r in records {
            for (k, v) in &r.credentials {
                if let Value::String(s) = v
                    && is_secret_field(k)
                {
                    self.add(s);
                }
            }
        }
    }

    /// Values of variables named like secrets, of `hidden` ones (and the values they hid),
    /// and passwords inside URLs.
    pub fn add_vars(&mut self, env: &EnvSet, hidden: &[String]) {
        let hidden: HashSet<&str> = hidden.iter().map(String::as_str).collect();
        for v in env.vars() {
            if is_secret_name(&v.name) || hidden.contains(v.name.as_str()) {
                self.names.insert(v.name.clone());
                self.add(&v.value);
                for (_, old) in &v.hidden {
                    self.add(old);
                }
            }
            if let Some(pw) = url_password(&v.value) {
                self.add(&pw);
            }
            self.add_url_user(&v.value);
        }
    }

    /// The user part of a URL without a password, if `u` is one.
    fn add_url_user(&mut self, u: &str) {
        if let Some(user) = url_user_only(u)
            && !self.known_users.contains(&user)
        {
            self.known_users.insert(user.clone());
            self.users.push(format!("{user}@"));
            self.matchers = OnceLock::new();
        }
    }

    /// A variable's value as printed: wholly masked when the variable is secret, else with
    /// every known secret masked inside it.
    pub fn mask_var(&self, name: &str, value: &str) -> String {
        if self.names.contains(name) && !value.is_empty() {
            MASK.to_string()
        } else {
            self.mask(value)
        }
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty() && self.users.is_empty()
    }

    /// `text` with every secret replaced by the mask, then every `user@` of a DSN by the
    /// mask and `@`: one pass each over the text.
    pub fn mask(&self, text: &str) -> String {
        let m = self.matchers.get_or_init(|| Matchers {
            values: Searcher::new(&self.values),
            users: Searcher::new(&self.users),
        });
        let out = m.values.replace(&self.values, text, MASK);
        m.users.replace(&self.users, &out, &format!("{MASK}@"))
    }
}

/// The password part of `scheme://user:password@host…`.
pub fn url_password(u: &str) -> Option<String> {
    let rest = u.split_once("://")?.1;
    let auth = rest.split('/').next()?.rsplit_once('@')?.0;
    let pw = auth.split_once(':')?.1;
    (!pw.is_empty()).then(|| pw.to_string())
}

/// The user part of `scheme://user@host…` when the URL has no password (a DSN whose key is
/// the user part).
pub(crate) fn url_user_only(u: &str) -> Option<String> {
    let rest = u.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let user = authority.rsplit_once('@')?.0;
    (!user.is_empty() && !user.contains(':')).then(|| user.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_everywhere() {
        let mut s = Secrets::new();
        s.add("pSecret123");
        s.add("ab");
        assert_eq!(
            s.mask("mysql://u:pSecret123@h/db {\"password\":\"pSecret123\"} ab"),
            "mysql://u:********@h/db {\"password\":\"********\"} ab"
        );
        assert!(is_secret_name("DJANGO_SECRET_KEY"));
        assert!(!is_secret_name("HOME"));
    }

    #[test]
    fn a_secret_containing_another_is_masked_whole_and_repeats_each_once() {
        let mut s = Secrets::new();
        s.add("Secret");
        s.add("pSecret123");
        s.add("Secret");
        assert_eq!(
            s.mask("pSecret123 Secret pSecret123pSecret123 xSecret"),
            "******** ******** **************** x********"
        );
        // A copy learns more secrets without changing the original.
        let mut more = s.clone();
        more.add("words");
        assert_eq!(more.mask("Secret words"), "******** ********");
        assert_eq!(s.mask("Secret words"), "******** words");
    }

    #[test]
    fn thousands_of_secrets_are_each_masked() {
        let mut s = Secrets::new();
        let pw: Vec<String> = (0..5000).map(|i| format!("pw-{i:06}")).collect();
        for p in &pw {
            s.add(p);
        }
        let text = pw.join(",");
        let masked = s.mask(&text);
        assert_eq!(masked, vec![MASK; pw.len()].join(","));
    }

    #[test]
    fn secret_names() {
        for n in [
            "DB_PASS",
            "SMTP_PWD",
            "CREDENTIALS",
            "GOOGLE_APPLICATION_CREDENTIALS",
            "AUTH",
            "BASIC_AUTH",
            "SESSION_KEY",
            "FLASK_SESSION_KEY",
            "GITHUB_PAT",
            "STRIPE_SK",
            "MYSQL_PASSWD",
            "GPG_PASSPHRASE",
            "SSH_PRIVATE_KEY",
            "GITHUB_TOKEN",
            "APP_SECRET",
            "MAILGUN_APIKEY",
            "SENDGRID_API_KEY",
            "db_password",
            "OAUTHTOKEN",
            "SIGNING_KEY",
        ] {
            assert!(is_secret_name(n), "{n} should be secret");
        }
        for n in [
            "PATH",
            "PORT",
            "PWD",
            "OLDPWD",
            "AUTHOR",
            "AUTH_URL",
            "SSH_AUTH_SOCK",
            "PASSENGER_MAX_POOL_SIZE",
            "PASSENGER_APP_ENV",
            "HOME",
            "TASK",
            "DISK",
            "KEYBOARD",
            "PRIMARY_KEY",
            "PATTERN",
            "LANG",
            "DATABASE_URL",
        ] {
            assert!(!is_secret_name(n), "{n} should not be secret");
        }
    }

    #[test]
    fn the_user_part_of_a_dsn_without_password_is_masked() {
        assert_eq!(
            url_user_only("https://abc123key@sentry.example/1").as_deref(),
            Some("abc123key")
        );
        assert_eq!(url_user_only("mysql://u:pw@h/db"), None);
        assert_eq!(url_user_only("https://example.com/a@b"), None);
        let mut s = Secrets::new();
        s.add_url_user("https://abc123key@sentry.example/1");
        assert_eq!(
            s.mask("SENTRY_DSN=https://abc123key@sentry.example/1"),
            "SENTRY_DSN=https://********@sentry.example/1"
        );
        assert!(!s.is_empty());
    }
}
