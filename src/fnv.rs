//! FNV-1a hashing for stable fingerprints and ids (the same across Rust versions and runs,
//! unlike the std hasher): staging records, trust digests, `${random-word}`, service ids.

const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0100_0000_01b3;

/// A running FNV-1a hash.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(OFFSET)
    }
}

impl Fnv {
    pub(crate) fn new() -> Self {
        Fnv::default()
    }

    /// A hash whose starting state is mixed with `seed` (for several independent rounds).
    pub(crate) fn seeded(seed: u64) -> Self {
        Fnv(OFFSET ^ seed)
    }

    /// Feed bytes as they are.
    pub(crate) fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(PRIME);
        }
    }

    /// Feed one field, then a separator, so that `("ab","c")` and `("a","bc")` differ.
    pub(crate) fn field(&mut self, bytes: &[u8]) {
        self.write(bytes);
        self.write(&[0xff]);
    }

    pub(crate) fn value(&self) -> u64 {
        self.0
    }

    /// The value as 16 hex digits.
    pub(crate) fn hex(&self) -> String {
        format!("{:016x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_fnv1a_values() {
        // Reference values of 64-bit FNV-1a.
        assert_eq!(Fnv::new().value(), 0xcbf2_9ce4_8422_2325);
        let mut h = Fnv::new();
        h.write(b"a");
        assert_eq!(h.value(), 0xaf63_dc4c_8601_ec8c);
        let mut h = Fnv::new();
        h.write(b"foobar");
        assert_eq!(h.value(), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn fields_are_separated() {
        let (mut a, mut b) = (Fnv::new(), Fnv::new());
        a.field(b"ab");
        a.field(b"c");
        b.field(b"a");
        b.field(b"bc");
        assert_ne!(a.value(), b.value());
    }
}
