//! Hardening tests: trust.
