//! Masking secrets in anything we print: service passwords, `hidden: true` variables and
//! variables whose names say they are secret. `--reveal` turns it off.

use serde_json::Value;

use crate::env::set::EnvSet;
use crate::platform::services::is_secret_field;
use crate::services::registry::ServiceRecord;

/// What a secret looks like once masked.
pub const MASK: &str = "********";

/// Secret strings to hide wherever they appear.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    values: Vec<String>,
    /// Variables whose whole value is secret, however short.
    names: Vec<String>,
}

/// Variable names that hold secrets by convention.
pub fn is_secret_name(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    [
        "PASSWORD",
        "PASSWD",
        "SECRET",
        "TOKEN",
        "PRIVATE_KEY",
        "API_KEY",
        "APIKEY",
    ]
    .iter()
    .any(|s| n.contains(s))
}

impl Secrets {
    pub fn new() -> Self {
        Secrets::default()
    }

    /// Add one secret (short strings are ignored: masking `1` everywhere helps nobody).
    pub fn add(&mut self, s: &str) {
        if s.len() >= 4 && !self.values.iter().any(|v| v == s) {
            self.values.push(s.to_string());
            // Longest first, so a secret containing another is masked whole.
            self.values.sort_by_key(|v| std::cmp::Reverse(v.len()));
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
    pub fn add_services(&mut self, records: &[ServiceRecord]) {
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
        for v in env.vars() {
            if is_secret_name(&v.name) || hidden.contains(&v.name) {
                self.names.push(v.name.clone());
                self.add(&v.value);
                for (_, old) in &v.hidden {
                    self.add(old);
                }
            }
            if let Some(pw) = url_password(&v.value) {
                self.add(&pw);
            }
        }
    }

    /// A variable's value as printed: wholly masked when the variable is secret, else with
    /// every known secret masked inside it.
    pub fn mask_var(&self, name: &str, value: &str) -> String {
        if self.names.iter().any(|n| n == name) && !value.is_empty() {
            MASK.to_string()
        } else {
            self.mask(value)
        }
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// `text` with every secret replaced by the mask.
    pub fn mask(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.values {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), MASK);
            }
        }
        out
    }
}

/// The password part of `scheme://user:password@host…`.
pub fn url_password(u: &str) -> Option<String> {
    let rest = u.split_once("://")?.1;
    let auth = rest.split('/').next()?.rsplit_once('@')?.0;
    let pw = auth.split_once(':')?.1;
    (!pw.is_empty()).then(|| pw.to_string())
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
}
