//! librsync's "rollsum" weak checksum (Adler-like, character offset 31).

const CHAR_OFFSET: u32 = 31;

/// Rolling weak checksum over a window, with librsync's rotate and rollout updates.
#[derive(Clone, Copy, Debug, Default)]
pub struct Rollsum {
    count: usize,
    s1: u32,
    s2: u32,
}

impl Rollsum {
    /// Computes the rollsum of `window` from scratch.
    pub fn of(window: &[u8]) -> Self {
        let n = window.len() as u32;
        let mut s1: u32 = 0;
        let mut s2: u32 = 0;
        // Pieces with constant weights vectorise; each piece adds its plain sum times
        // the weight of the bytes after it.
        // (16-byte pieces keep both piece sums within u16: at most 16·255 and 136·255.)
        let mut pieces = window.chunks_exact(16);
        let mut after = n;
        for piece in &mut pieces {
            after -= 16;
            let mut p1: u16 = 0;
            let mut p2: u16 = 0;
            for (j, &b) in piece.iter().enumerate() {
                p1 += u16::from(b);
                p2 += (16 - j as u16) * u16::from(b);
            }
            s2 = s2
                .wrapping_add(after.wrapping_mul(u32::from(p1)))
                .wrapping_add(u32::from(p2));
            s1 = s1.wrapping_add(u32::from(p1));
        }
        for (j, &b) in pieces.remainder().iter().enumerate() {
            s1 = s1.wrapping_add(u32::from(b));
            s2 = s2.wrapping_add((after - j as u32).wrapping_mul(u32::from(b)));
        }
        // Each byte also carries CHAR_OFFSET: s1 += n*31, s2 += 31*n(n+1)/2.
        let n64 = u64::from(n);
        s1 = s1.wrapping_add(n.wrapping_mul(CHAR_OFFSET));
        s2 = s2.wrapping_add((n64 * (n64 + 1) / 2 * u64::from(CHAR_OFFSET)) as u32);
        Rollsum {
            count: window.len(),
            s1: s1 & 0xFFFF,
            s2: s2 & 0xFFFF,
        }
    }

    /// Rebuilds the state of a `count`-byte window from its digest (the sums are kept mod 2^16).
    pub fn from_digest(digest: u32, count: usize) -> Self {
        Rollsum {
            count,
            s1: digest & 0xFFFF,
            s2: digest >> 16,
        }
    }

    /// Number of bytes currently in the window.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Slides the window by one byte: `out` leaves at the front, `inb` enters at the back.
    #[inline(always)]
    pub fn rotate(&mut self, out: u8, inb: u8) {
        let out = u32::from(out) + CHAR_OFFSET;
        let inb = u32::from(inb) + CHAR_OFFSET;
        self.s1 = self.s1.wrapping_add(inb).wrapping_sub(out) & 0xFFFF;
        self.s2 = self
            .s2
            .wrapping_add(self.s1)
            .wrapping_sub((self.count as u32).wrapping_mul(out))
            & 0xFFFF;
    }

    /// Removes `out` from the front of the window, shrinking it by one byte.
    #[inline]
    pub fn rollout(&mut self, out: u8) {
        let out = u32::from(out) + CHAR_OFFSET;
        self.s1 = self.s1.wrapping_sub(out) & 0xFFFF;
        self.s2 = self.s2.wrapping_sub((self.count as u32).wrapping_mul(out)) & 0xFFFF;
        self.count -= 1;
    }

    /// The raw 32-bit digest stored in signature files: `s2 << 16 | s1`.
    #[inline(always)]
    pub fn digest(&self) -> u32 {
        (self.s2 << 16) | self.s1
    }
}

/// MurmurHash3's 32-bit finaliser, which librsync applies to weak sums before matching.
#[inline(always)]
pub fn mix32(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h
}

/// The hash-table key librsync derives from a raw weak sum (`nozero(mix32(weak))`).
#[inline(always)]
pub fn match_key(weak: u32) -> u32 {
    let h = mix32(weak);
    if h == 0 {
        0xFFFF_FFFF
    } else {
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(window: &[u8]) -> u32 {
        let n = window.len() as u64;
        let mut s1: u64 = 0;
        let mut s2: u64 = 0;
        for (i, &b) in window.iter().enumerate() {
            s1 += u64::from(b) + 31;
            s2 += (n - i as u64) * (u64::from(b) + 31);
        }
        (((s2 & 0xFFFF) << 16) | (s1 & 0xFFFF)) as u32
    }

    #[test]
    fn abc_matches_librsync() {
        assert_eq!(Rollsum::of(b"abc").digest(), 0x0304_0183);
    }

    #[test]
    fn rolling_equals_recomputing() {
        let data: Vec<u8> = (0..5000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for &w in &[1usize, 7, 512, 2048] {
            let mut r = Rollsum::of(&data[..w]);
            for start in 0..(data.len() - w) {
                assert_eq!(r.digest(), naive(&data[start..start + w]));
                r.rotate(data[start], data[start + w]);
            }
            let tail_start = data.len() - w;
            let mut r = Rollsum::of(&data[tail_start..]);
            for start in tail_start..data.len() {
                assert_eq!(r.digest(), naive(&data[start..]));
                r.rollout(data[start]);
            }
        }
    }
}
