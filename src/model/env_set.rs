//! An environment with provenance: each variable remembers which layer set it, why, and the
//! values it hid, so `env explain VAR` can answer "where does this come from?".

use std::collections::HashMap;
use std::fmt;

/// The layers, from lowest to highest precedence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layer {
    /// Your shell's environment (only for `inherit: true` variables and PATH).
    Shell,
    /// A platform rule (HOME, PORT, VCAP_APPLICATION, STACKATO_*, …).
    Platform,
    /// A bound service (VCAP_SERVICES, STACKATO_SERVICES, DATABASE_URL, …).
    Service,
    /// `env:` in stackato.yml.
    Manifest,
    /// An answer given at a prompt and remembered in the state dir.
    Answer,
    /// A `.env` file.
    DotEnv(String),
    /// `--env KEY=VALUE` on the command line.
    Cli,
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Layer::Shell => f.write_str("your shell"),
            Layer::Platform => f.write_str("platform rule"),
            Layer::Service => f.write_str("service"),
            Layer::Manifest => f.write_str("stackato.yml (env)"),
            Layer::Answer => f.write_str("your answer (remembered)"),
            Layer::DotEnv(p) => write!(f, "{p}"),
            Layer::Cli => f.write_str("--env"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Var {
    pub name: String,
    pub value: String,
    pub layer: Layer,
    /// The rule or source, in words ("exactly one relational service is bound").
    pub why: String,
    /// Values it replaced, oldest first.
    pub hidden: Vec<(Layer, String)>,
}

/// An ordered set of variables with provenance.
#[derive(Clone, Default)]
pub struct EnvSet {
    vars: Vec<Var>,
    /// Each name's place in `vars`: a lookup per variable, not a scan (a hostile `.env` or
    /// dump may hold 100 000 names).
    index: HashMap<String, usize>,
}

// The index follows from `vars`: equality and debug output are those of the variables.
impl PartialEq for EnvSet {
    fn eq(&self, other: &Self) -> bool {
        self.vars == other.vars
    }
}

impl Eq for EnvSet {}

impl fmt::Debug for EnvSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvSet").field("vars", &self.vars).finish()
    }
}

impl EnvSet {
    pub fn new() -> Self {
        EnvSet::default()
    }

    /// Set `name`; a previous value is kept as hidden by this one.
    pub fn set(
        &mut self,
        name: &str,
        value: impl Into<String>,
        layer: Layer,
        why: impl Into<String>,
    ) {
        let value = value.into();
        let why = why.into();
        match self.index.get(name).map(|&i| &mut self.vars[i]) {
            Some(v) => {
                let old_layer = std::mem::replace(&mut v.layer, layer);
                let old_value = std::mem::replace(&mut v.value, value);
                v.hidden.push((old_layer, old_value));
                v.why = why;
            }
            None => {
                self.index.insert(name.to_string(), self.vars.len());
                self.vars.push(Var {
                    name: name.to_string(),
                    value,
                    layer,
                    why,
                    hidden: Vec::new(),
                });
            }
        }
    }

    /// Change the value of `name` in place (its layer and reason stay); false when unset.
    pub(crate) fn amend(&mut self, name: &str, value: impl Into<String>) -> bool {
        match self.index.get(name) {
            Some(&i) => {
                self.vars[i].value = value.into();
                true
            }
            None => false,
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.var(name).map(|v| v.value.as_str())
    }

    pub fn var(&self, name: &str) -> Option<&Var> {
        self.index.get(name).map(|&i| &self.vars[i])
    }

    pub fn remove(&mut self, name: &str) -> Option<Var> {
        let i = self.index.remove(name)?;
        let v = self.vars.remove(i);
        for later in &self.vars[i..] {
            if let Some(at) = self.index.get_mut(&later.name) {
                *at -= 1;
            }
        }
        Some(v)
    }

    pub fn vars(&self) -> &[Var] {
        &self.vars
    }

    pub fn len(&self) -> usize {
        self.vars.len()
    }

    pub fn is_empty(&self) -> bool {
        self.vars.is_empty()
    }

    /// Name/value pairs, sorted by name.
    pub fn sorted_pairs(&self) -> Vec<(&str, &str)> {
        let mut v: Vec<(&str, &str)> = self
            .vars
            .iter()
            .map(|v| (v.name.as_str(), v.value.as_str()))
            .collect();
        v.sort();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_layers_hide_earlier_ones() {
        let mut e = EnvSet::new();
        e.set("A", "1", Layer::Platform, "rule");
        e.set("A", "2", Layer::Manifest, "env:");
        let v = e.var("A").unwrap();
        assert_eq!(v.value, "2");
        assert_eq!(v.layer, Layer::Manifest);
        assert_eq!(v.hidden, vec![(Layer::Platform, "1".to_string())]);
    }

    #[test]
    fn the_index_follows_removals_and_keeps_the_order() {
        let mut e = EnvSet::new();
        for n in ["A", "B", "C", "D"] {
            e.set(n, n.to_lowercase(), Layer::Platform, "rule");
        }
        assert_eq!(e.remove("B").map(|v| v.value), Some("b".to_string()));
        assert_eq!(e.remove("B"), None);
        assert!(e.amend("C", "c2"));
        assert!(!e.amend("B", "x"));
        e.set("B", "b2", Layer::Cli, "--env");
        e.set("D", "d2", Layer::Cli, "--env");
        let got: Vec<(&str, &str)> = e
            .vars()
            .iter()
            .map(|v| (v.name.as_str(), v.value.as_str()))
            .collect();
        assert_eq!(got, [("A", "a"), ("C", "c2"), ("D", "d2"), ("B", "b2")]);
        assert_eq!(e.get("C"), Some("c2"));
        assert_eq!(e.var("D").map(|v| v.hidden.len()), Some(1));
        assert_eq!(e.get("B"), Some("b2"));
    }
}
