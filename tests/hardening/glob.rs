//! Hardening tests: glob.
