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
        #[cfg(target_arch = "x86_64")]
        {
            if window.len() >= 64 && super::md4_lanes::uses_avx2() {
                // SAFETY: AVX2 is available (checked above).
                let (s1, s2) = unsafe { avx2::sums(window) };
                return Self::with_offsets(window.len(), s1, s2);
            }
        }
        let (s1, s2) = portable_sums(window);
        Self::with_offsets(window.len(), s1, s2)
    }

    /// The state of a `len`-byte window from its plain sums `s1 = Σ b` and
    /// `s2 = Σ (len - i)·b` (mod 2^32): each byte also carries CHAR_OFFSET.
    fn with_offsets(len: usize, s1: u32, s2: u32) -> Self {
        let n = len as u32;
        let n64 = u64::from(n);
        let s1 = s1.wrapping_add(n.wrapping_mul(CHAR_OFFSET));
        let s2 = s2.wrapping_add((n64 * (n64 + 1) / 2 * u64::from(CHAR_OFFSET)) as u32);
        Rollsum {
            count: len,
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

/// `(Σ b, Σ (n - i)·b)` of a window, mod 2^32, in portable code.
fn portable_sums(window: &[u8]) -> (u32, u32) {
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
    (s1, s2)
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    /// Sum of the eight 32-bit lanes, mod 2^32.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn lanes_sum(v: __m256i) -> u32 {
        let mut lanes = [0u32; 8];
        // SAFETY: `lanes` is 32 bytes; an unaligned store is allowed.
        unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), v) };
        lanes.iter().fold(0u32, |a, &x| a.wrapping_add(x))
    }

    /// `(Σ b, Σ (n - i)·b)` mod 2^32, 32 bytes per step: byte sums with `vpsadbw`, the
    /// weights 32…1 within a step with `vpmaddubsw`/`vpmaddwd`, and each step's sum
    /// weighted by the steps after it through a running sum of the sums before it.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn sums(window: &[u8]) -> (u32, u32) {
        let steps = window.len() / 32;
        let zero = _mm256_setzero_si256();
        let weights = _mm256_setr_epi8(
            32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11,
            10, 9, 8, 7, 6, 5, 4, 3, 2, 1,
        );
        let ones = _mm256_set1_epi16(1);
        let mut plain = zero; // Σ b of the steps so far (in the low half of 64-bit lanes)
        let mut before = zero; // Σ over steps of `plain` before the step
        let mut weighted = zero; // Σ (32 - j)·b within each step
        for k in 0..steps {
            // SAFETY: step k covers window[32k..32k+32], inside the window.
            let c = unsafe { _mm256_loadu_si256(window.as_ptr().add(32 * k).cast()) };
            before = _mm256_add_epi32(before, plain);
            plain = _mm256_add_epi32(plain, _mm256_sad_epu8(c, zero));
            let pairs = _mm256_maddubs_epi16(c, weights); // at most 255·(32+31): no saturation
            weighted = _mm256_add_epi32(weighted, _mm256_madd_epi16(pairs, ones));
        }
        // SAFETY: AVX2 is enabled in this function.
        let (s1, s_before, s_weighted) =
            unsafe { (lanes_sum(plain), lanes_sum(before), lanes_sum(weighted)) };
        let tail = &window[steps * 32..];
        let t = tail.len() as u32;
        let mut s2 = s_before
            .wrapping_mul(32)
            .wrapping_add(s_weighted)
            .wrapping_add(t.wrapping_mul(s1));
        let mut s1 = s1;
        for (j, &b) in tail.iter().enumerate() {
            s1 = s1.wrapping_add(u32::from(b));
            s2 = s2.wrapping_add((t - j as u32).wrapping_mul(u32::from(b)));
        }
        (s1, s2)
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
    fn every_length_matches_the_definition_on_every_path() {
        let data: Vec<u8> = (0..20_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
            .chain(std::iter::repeat_n(255u8, 100_000))
            .collect();
        for len in (0..300).chain([4095, 4096, 16_384, 16_416, 65_537, 89_999]) {
            for start in [0usize, 1, 31, 19_990] {
                let w = &data[start..start + len];
                assert_eq!(Rollsum::of(w).digest(), naive(w), "len {len} at {start}");
                let (s1, s2) = portable_sums(w);
                assert_eq!(Rollsum::with_offsets(len, s1, s2).digest(), naive(w));
            }
        }
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
