//! What the core may ask the world about a job's processes: their last lines (for messages),
//! a hint from them, a failed pre-running hook, and whether a port is free.

use super::child::SharedTail;
use super::job::World;

/// The processes' last lines, as the core asks for them.
pub(super) struct Tails<'a>(pub &'a [SharedTail]);

impl World for Tails<'_> {
    fn tail(&self, job: usize) -> String {
        self.0[job]
            .lock()
            .map(|t| t.lines.iter().cloned().collect::<Vec<_>>().join("\n    "))
            .unwrap_or_default()
    }

    fn hint(&self, job: usize) -> String {
        let (lines, declared, fallback): (Vec<String>, Option<String>, Option<String>) = self.0
            [job]
            .lock()
            .map(|t| {
                (
                    t.lines.iter().cloned().collect(),
                    t.declared_runtime.clone(),
                    t.runtime_fallback.clone(),
                )
            })
            .unwrap_or_default();
        let py27 = || {
            crate::platform::runtime::installed(crate::platform::runtime::Lang::Python)
                .iter()
                .any(|i| i.version.major == 2 && i.version.minor == Some(7))
        };
        let mut out = super::hints::hint(&lines, declared.as_deref(), py27)
            .map(|h| format!("\n{h}"))
            .unwrap_or_default();
        // The app ran on another runtime than it declares: say it again where it failed.
        if let Some(f) = fallback {
            out.push_str(&format!("\nhelp: {f}"));
        }
        out
    }

    fn hook_failure(&self, job: usize) -> Option<String> {
        self.0[job].lock().ok().and_then(|t| t.hook_failure.clone())
    }

    fn port_free(&self, port: u16) -> bool {
        crate::services::ports::is_free(port)
    }
}
