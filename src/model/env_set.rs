//! An environment with provenance: each variable remembers which layer set it, why, and the
//! values it hid, so `env explain VAR` can answer "where does this come from?".

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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvSet {
    vars: Vec<Var>,
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
        match self.vars.iter_mut().find(|v| v.name == name) {
            Some(v) => {
                let old_layer = std::mem::replace(&mut v.layer, layer);
                let old_value = std::mem::replace(&mut v.value, value);
                v.hidden.push((old_layer, old_value));
                v.why = why;
            }
            None => self.vars.push(Var {
                name: name.to_string(),
                value,
                layer,
                why,
                hidden: Vec::new(),
            }),
        }
    }

    /// Change the value of `name` in place (its layer and reason stay); false when unset.
    pub(crate) fn amend(&mut self, name: &str, value: impl Into<String>) -> bool {
        self.vars
            .iter_mut()
            .find(|v| v.name == name)
            .map(|v| v.value = value.into())
            .is_some()
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.var(name).map(|v| v.value.as_str())
    }

    pub fn var(&self, name: &str) -> Option<&Var> {
        self.vars.iter().find(|v| v.name == name)
    }

    pub fn remove(&mut self, name: &str) -> Option<Var> {
        let i = self.vars.iter().position(|v| v.name == name)?;
        Some(self.vars.remove(i))
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
}
