//! Random values for credentials and ids: the OS generator (`getrandom`) for real use, a
//! seeded one for reproducible tests. Nothing here is used for anything but generating fresh
//! secrets. When the OS has no randomness to give, the caller gets [`RandomError`]: refusing
//! to go on is safer than weak secrets.

/// The operating system could not give random bytes.
#[derive(Debug, thiserror::Error)]
#[error("cannot get random bytes from the operating system to generate credentials: {0}")]
pub struct RandomError(getrandom::Error);

/// A source of random bytes.
pub trait Rng {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), RandomError>;

    /// `n` lowercase hex digits.
    fn hex(&mut self, n: usize) -> Result<String, RandomError> {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut b = vec![0u8; n];
        self.fill(&mut b)?;
        Ok(b.iter().map(|x| HEX[(x & 15) as usize] as char).collect())
    }

    /// `n` characters from `[A-Za-z0-9]`, without modulo bias.
    fn alnum(&mut self, n: usize) -> Result<String, RandomError> {
        const SET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let mut out = String::with_capacity(n);
        let mut b = [0u8; 1];
        while out.len() < n {
            self.fill(&mut b)?;
            // 248 = 4 * 62: reject the top values so every character is equally likely.
            if b[0] < 248 {
                out.push(SET[(b[0] % 62) as usize] as char);
            }
        }
        Ok(out)
    }

    /// A random (version 4) UUID.
    fn uuid(&mut self) -> Result<String, RandomError> {
        let mut b = [0u8; 16];
        self.fill(&mut b)?;
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
        Ok(format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        ))
    }
}

/// The operating system's generator (`getrandom`).
pub struct OsRng;

impl Rng for OsRng {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), RandomError> {
        getrandom::fill(buf).map_err(RandomError)
    }
}

/// A deterministic generator (SplitMix64) for golden tests. Never for real credentials.
pub struct SeededRng(u64);

impl SeededRng {
    pub fn new(seed: u64) -> Self {
        SeededRng(seed)
    }
}

impl Rng for SeededRng {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), RandomError> {
        for chunk in buf.chunks_mut(8) {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let mut r = SeededRng::new(7);
        assert_eq!(r.hex(32).unwrap().len(), 32);
        let a = r.alnum(12).unwrap();
        assert!(a.len() == 12 && a.chars().all(|c| c.is_ascii_alphanumeric()));
        let u = r.uuid().unwrap();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
    }

    #[test]
    fn os_rng_differs() {
        assert_ne!(OsRng.hex(32).unwrap(), OsRng.hex(32).unwrap());
    }

    #[test]
    fn seeded_is_reproducible() {
        assert_eq!(
            SeededRng::new(1).hex(16).unwrap(),
            SeededRng::new(1).hex(16).unwrap()
        );
    }
}
