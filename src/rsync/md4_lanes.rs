//! MD4 of many equal-length blocks at once: eight blocks per AVX2 lane set.
//!
//! Signatures and delta look-ahead hash thousands of independent blocks of the same length.
//! No maintained crate offers multi-buffer MD4, so this module runs the RFC 1320 rounds on eight
//! blocks in parallel SIMD lanes when the CPU has AVX2, and falls back to the `md4` crate
//! (through [`super::strong::md4`]) otherwise. Results are checked against that crate in tests.

use super::strong::md4;

/// MD4 of `count` blocks of `len` bytes, block `i` being `data[i * stride..i * stride + len]`.
///
/// Digests are appended to `out` in block order.
pub fn md4_strided(data: &[u8], stride: usize, len: usize, count: usize, out: &mut Vec<[u8; 16]>) {
    assert!(
        count == 0 || (count - 1) * stride + len <= data.len(),
        "blocks exceed the buffer"
    );
    out.reserve(count);
    let mut i = 0;
    #[cfg(target_arch = "x86_64")]
    {
        if count >= 8 && uses_avx2() {
            while i + 8 <= count {
                let mut group = [[0u8; 16]; 8];
                // SAFETY: AVX2 is available (checked above) and the eight blocks lie inside
                // `data` (asserted above).
                unsafe { avx2::md4_x8(data, i * stride, stride, len, &mut group) };
                out.extend_from_slice(&group);
                i += 8;
            }
        }
    }
    while i < count {
        out.push(md4(&data[i * stride..i * stride + len]));
        i += 1;
    }
}

/// Whether [`md4_strided`] runs eight AVX2 lanes on this CPU (else the portable code).
pub fn uses_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    const S1: [i32; 4] = [3, 7, 11, 19];
    const S2: [i32; 4] = [3, 5, 9, 13];
    const S3: [i32; 4] = [3, 9, 11, 15];
    const O2: [usize; 16] = [0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15];
    const O3: [usize; 16] = [0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15];

    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn rotl(x: __m256i, s: i32) -> __m256i {
        _mm256_or_si256(
            _mm256_sll_epi32(x, _mm_cvtsi32_si128(s)),
            _mm256_srl_epi32(x, _mm_cvtsi32_si128(32 - s)),
        )
    }

    /// One 64-byte chunk for eight lanes; `w[k]` holds message word k of every lane.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn compress(state: &mut [__m256i; 4], w: &[__m256i; 16]) {
        let [mut a, mut b, mut c, mut d] = *state;
        let k2 = _mm256_set1_epi32(0x5A82_7999);
        let k3 = _mm256_set1_epi32(0x6ED9_EBA1u32 as i32);
        for i in 0..16 {
            let f = _mm256_or_si256(_mm256_and_si256(b, c), _mm256_andnot_si256(b, d));
            let t = rotl(_mm256_add_epi32(_mm256_add_epi32(a, f), w[i]), S1[i % 4]);
            (a, b, c, d) = (d, t, b, c);
        }
        for i in 0..16 {
            let g = _mm256_or_si256(
                _mm256_or_si256(_mm256_and_si256(b, c), _mm256_and_si256(b, d)),
                _mm256_and_si256(c, d),
            );
            let sum = _mm256_add_epi32(_mm256_add_epi32(a, g), _mm256_add_epi32(w[O2[i]], k2));
            let t = rotl(sum, S2[i % 4]);
            (a, b, c, d) = (d, t, b, c);
        }
        for i in 0..16 {
            let h = _mm256_xor_si256(_mm256_xor_si256(b, c), d);
            let sum = _mm256_add_epi32(_mm256_add_epi32(a, h), _mm256_add_epi32(w[O3[i]], k3));
            let t = rotl(sum, S3[i % 4]);
            (a, b, c, d) = (d, t, b, c);
        }
        state[0] = _mm256_add_epi32(state[0], a);
        state[1] = _mm256_add_epi32(state[1], b);
        state[2] = _mm256_add_epi32(state[2], c);
        state[3] = _mm256_add_epi32(state[3], d);
    }

    /// Loads the 16 words of one 64-byte chunk of each of the eight `chunks` into lane-major
    /// vectors (x86 is little-endian, as MD4's words are).
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn load(chunks: [&[u8]; 8]) -> [__m256i; 16] {
        let p: [*const i32; 8] = std::array::from_fn(|j| {
            assert!(chunks[j].len() >= 64, "an MD4 chunk is 64 bytes");
            chunks[j].as_ptr() as *const i32
        });
        let mut w = [_mm256_setzero_si256(); 16];
        for (k, slot) in w.iter_mut().enumerate() {
            // SAFETY: k < 16, so each read lies within the 64 bytes asserted above.
            *slot = _mm256_set_epi32(
                p[7].add(k).read_unaligned(),
                p[6].add(k).read_unaligned(),
                p[5].add(k).read_unaligned(),
                p[4].add(k).read_unaligned(),
                p[3].add(k).read_unaligned(),
                p[2].add(k).read_unaligned(),
                p[1].add(k).read_unaligned(),
                p[0].add(k).read_unaligned(),
            );
        }
        w
    }

    /// MD4 of the eight `len`-byte blocks starting at `start + j * stride`.
    #[target_feature(enable = "avx2")]
    pub unsafe fn md4_x8(
        data: &[u8],
        start: usize,
        stride: usize,
        len: usize,
        out: &mut [[u8; 16]; 8],
    ) {
        let mut state = [
            _mm256_set1_epi32(0x6745_2301),
            _mm256_set1_epi32(0xEFCD_AB89u32 as i32),
            _mm256_set1_epi32(0x98BA_DCFEu32 as i32),
            _mm256_set1_epi32(0x1032_5476),
        ];
        let block = |j: usize| &data[start + j * stride..start + j * stride + len];
        let full = len / 64;
        for c in 0..full {
            let chunks: [&[u8]; 8] = std::array::from_fn(|j| &block(j)[c * 64..c * 64 + 64]);
            compress(&mut state, &load(chunks));
        }
        // Padding: 0x80, zeros to 56 mod 64, the bit length little-endian; one or two chunks.
        let rest = len - full * 64;
        let tail_chunks = if rest < 56 { 1 } else { 2 };
        let mut tails = [[0u8; 128]; 8];
        for (j, t) in tails.iter_mut().enumerate() {
            t[..rest].copy_from_slice(&block(j)[full * 64..]);
            t[rest] = 0x80;
            let end = tail_chunks * 64;
            t[end - 8..end].copy_from_slice(&((len as u64).wrapping_mul(8)).to_le_bytes());
        }
        for c in 0..tail_chunks {
            let chunks: [&[u8]; 8] = std::array::from_fn(|j| &tails[j][c * 64..c * 64 + 64]);
            compress(&mut state, &load(chunks));
        }
        let mut words = [[0u32; 8]; 4];
        for (i, v) in state.iter().enumerate() {
            _mm256_storeu_si256(words[i].as_mut_ptr() as *mut __m256i, *v);
        }
        for (j, digest) in out.iter_mut().enumerate() {
            for i in 0..4 {
                digest[4 * i..4 * i + 4].copy_from_slice(&words[i][j].to_le_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_md4_crate_for_every_length_class() {
        let data: Vec<u8> = (0..200_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 19) as u8)
            .collect();
        for &len in &[
            0usize, 1, 55, 56, 63, 64, 65, 119, 120, 127, 128, 512, 700, 2048, 4095,
        ] {
            for &stride in &[len.max(1), len + 3, len + 64] {
                let count = 19;
                if (count - 1) * stride + len > data.len() {
                    continue;
                }
                let mut got = Vec::new();
                md4_strided(&data, stride, len, count, &mut got);
                let want: Vec<[u8; 16]> = (0..count)
                    .map(|i| md4(&data[i * stride..i * stride + len]))
                    .collect();
                assert_eq!(got, want, "len {len} stride {stride}");
            }
        }
    }
}
