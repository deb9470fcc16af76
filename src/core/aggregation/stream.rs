//! Copies that bypass the cache (non-temporal stores) for outputs written once and not
//! read back soon: a plain store first reads the destination's cache line from memory,
//! a streaming store does not, so writing a large output costs half the memory traffic.

/// Moves `src` into `dst` and leaves `src` all zeros (one pass over `src`), with
/// streaming stores into `dst` where the target has them (x86-64: SSE, always present);
/// plain stores elsewhere. The stores are fenced before returning, so the data is visible
/// to whichever thread reads `dst` next. Returns whether every value moved is finite
/// (checked on the way: it costs no extra pass).
pub fn take(dst: &mut [f32], src: &mut [f32]) -> bool {
    assert_eq!(dst.len(), src.len(), "stream::take lengths");
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        let n = dst.len();
        // Plain stores up to the first 16-byte boundary of `dst`, streaming stores of
        // four floats after it, plain stores for the tail.
        let head = dst.as_ptr().align_offset(16).min(n);
        let body = (n - head) / 4 * 4;
        let mut finite = plain_take(&mut dst[..head], &mut src[..head]);
        let (d, s) = (dst.as_mut_ptr(), src.as_mut_ptr());
        // SAFETY: SSE2 is part of x86-64.
        let (exp, mut bad) = unsafe { (_mm_set1_epi32(EXP as i32), _mm_setzero_si128()) };
        for j in (head..head + body).step_by(4) {
            // SAFETY: j + 4 ≤ head + body ≤ n = len of both slices, and d + j is 16-byte
            // aligned (head aligns it; j − head is a multiple of 4 floats). SSE is part of
            // x86-64.
            unsafe {
                let v = _mm_loadu_ps(s.add(j));
                _mm_stream_ps(d.add(j), v);
                _mm_storeu_ps(s.add(j), _mm_setzero_ps());
                let e = _mm_and_si128(_mm_castps_si128(v), exp);
                bad = _mm_or_si128(bad, _mm_cmpeq_epi32(e, exp));
            }
        }
        // SAFETY: SSE and SSE2 are part of x86-64.
        unsafe {
            _mm_sfence();
            finite &= _mm_movemask_epi8(bad) == 0;
        }
        finite & plain_take(&mut dst[head + body..], &mut src[head + body..])
    }
    #[cfg(not(target_arch = "x86_64"))]
    plain_take(dst, src)
}

/// Exponent bits of an f32: all set for NaN and ±Inf.
const EXP: u32 = 0x7f80_0000;

/// `take` with plain stores.
fn plain_take(dst: &mut [f32], src: &mut [f32]) -> bool {
    let mut bad = false;
    for (d, s) in dst.iter_mut().zip(src) {
        *d = std::mem::take(s);
        bad |= (d.to_bits() & EXP) == EXP;
    }
    !bad
}

#[cfg(test)]
mod tests {
    #[test]
    fn moves_at_every_alignment_and_length() {
        let orig: Vec<f32> = (0..300).map(|i| i as f32 * 0.5 - 7.0).collect();
        for off in 0..4 {
            for len in [0, 1, 3, 4, 5, 16, 17, 63, 64, 200, 296] {
                let mut buf = vec![f32::NAN; 300 + 4];
                let mut src = orig.clone();
                assert!(super::take(&mut buf[off..off + len], &mut src[..len]));
                assert_eq!(&buf[off..off + len], &orig[..len], "off {off} len {len}");
                assert!(
                    src[..len].iter().all(|&x| x == 0.0),
                    "src zeroed, len {len}"
                );
                assert_eq!(&src[len..], &orig[len..], "src beyond len untouched");
                assert!(
                    buf[..off].iter().all(|x| x.is_nan()),
                    "before, off {off} len {len}"
                );
                assert!(
                    buf[off + len..].iter().all(|x| x.is_nan()),
                    "after, off {off} len {len}"
                );
            }
        }
    }

    #[test]
    fn reports_a_non_finite_value_anywhere() {
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            for off in 0..4 {
                for at in [0, 1, 2, 3, 4, 5, 30, 98, 99] {
                    let mut buf = vec![0.0f32; 104];
                    let mut src: Vec<f32> = (0..100).map(|i| i as f32).collect();
                    src[at] = bad;
                    assert!(
                        !super::take(&mut buf[off..off + 100], &mut src),
                        "{bad} at {at}, off {off}"
                    );
                }
            }
        }
        let mut buf = vec![0.0f32; 8];
        let mut src = vec![
            f32::MAX,
            f32::MIN,
            f32::MIN_POSITIVE,
            -0.0,
            1e-45,
            0.0,
            1.0,
            -1.0,
        ];
        assert!(super::take(&mut buf, &mut src));
    }
}
