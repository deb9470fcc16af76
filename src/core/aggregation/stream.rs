//! Copies that bypass the cache (non-temporal stores) for outputs written once and not
//! read back soon: a plain store first reads the destination's cache line from memory,
//! a streaming store does not, so writing a large output costs half the memory traffic.

/// Orders this thread's streaming stores before its later stores, so that another thread
/// that learns of them (through a lock, a channel, a join) sees them. Streaming stores are
/// weakly ordered: they skip the cache and may reach memory after later plain stores.
pub fn fence() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE is part of x86-64.
    unsafe {
        std::arch::x86_64::_mm_sfence()
    };
}

/// Moves `src` into `dst` (same length) and leaves `src` all zeros, in one pass over
/// `src`, with streaming stores into `dst` where the target has them (x86-64: SSE, always
/// present) and plain stores elsewhere; it notes on the way whether every value moved is
/// finite (no extra pass). The move comes in installments: each [`Drain::step`] moves the
/// next few floats, so that the streaming stores reach memory while the caller works between
/// steps (issued in one burst, they stall the core until memory has taken nearly all of
/// them); [`Drain::finish`] moves the rest. Call [`fence`] once the last drain of a batch
/// has finished, before another thread reads `dst`.
pub struct Drain<'a> {
    dst: &'a mut [f32],
    src: &'a mut [f32],
    /// Next position to move.
    at: usize,
    /// End of the part moved with streaming stores (16-byte aligned in `dst`); the rest,
    /// under four floats, is moved by `finish`.
    body_end: usize,
    finite: bool,
}

impl<'a> Drain<'a> {
    /// A drain of `src` into `dst` (same length); nothing is moved but the few floats
    /// before `dst`'s first 16-byte boundary.
    pub fn new(dst: &'a mut [f32], src: &'a mut [f32]) -> Self {
        assert_eq!(dst.len(), src.len(), "stream::Drain lengths");
        let n = dst.len();
        let head = if cfg!(target_arch = "x86_64") {
            dst.as_ptr().align_offset(16).min(n)
        } else {
            0
        };
        let body_end = head + (n - head) / 4 * 4;
        let finite = plain_take(&mut dst[..head], &mut src[..head]);
        Drain {
            dst,
            src,
            at: head,
            body_end,
            finite,
        }
    }

    /// Moves the next `floats` (rounded up to a multiple of four), or what is left.
    #[inline]
    pub fn step(&mut self, floats: usize) {
        let stop = self.at.saturating_add(floats).min(self.body_end);
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::*;
            let (d, s) = (self.dst.as_mut_ptr(), self.src.as_mut_ptr());
            // SAFETY: SSE2 is part of x86-64.
            let (exp, mut bad) = unsafe { (_mm_set1_epi32(EXP as i32), _mm_setzero_si128()) };
            let mut j = self.at;
            while j < stop {
                // SAFETY: j + 4 ≤ body_end ≤ len of both slices (j − head and body_end − head
                // are multiples of 4), and d + j is 16-byte aligned (head aligns it). SSE and
                // SSE2 are part of x86-64.
                unsafe {
                    let v = _mm_loadu_ps(s.add(j));
                    _mm_stream_ps(d.add(j), v);
                    _mm_storeu_ps(s.add(j), _mm_setzero_ps());
                    let e = _mm_and_si128(_mm_castps_si128(v), exp);
                    bad = _mm_or_si128(bad, _mm_cmpeq_epi32(e, exp));
                }
                j += 4;
            }
            self.at = j;
            // SAFETY: SSE2 is part of x86-64.
            self.finite &= unsafe { _mm_movemask_epi8(bad) } == 0;
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let stop = stop.max(self.at);
            self.finite &= plain_take(&mut self.dst[self.at..stop], &mut self.src[self.at..stop]);
            self.at = stop;
        }
    }

    /// Moves whatever is left; returns whether every value moved was finite. The streaming
    /// stores are not fenced: see [`fence`].
    pub fn finish(mut self) -> bool {
        self.step(usize::MAX);
        let e = self.body_end;
        self.finite & plain_take(&mut self.dst[e..], &mut self.src[e..])
    }
}

/// Exponent bits of an f32: all set for NaN and ±Inf.
const EXP: u32 = 0x7f80_0000;

/// A move with plain stores; whether every value moved is finite.
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
    /// The whole move at once, fenced.
    fn take(dst: &mut [f32], src: &mut [f32]) -> bool {
        let finite = super::Drain::new(dst, src).finish();
        super::fence();
        finite
    }

    #[test]
    fn moves_at_every_alignment_and_length() {
        let orig: Vec<f32> = (0..300).map(|i| i as f32 * 0.5 - 7.0).collect();
        for off in 0..4 {
            for len in [0, 1, 3, 4, 5, 16, 17, 63, 64, 200, 296] {
                let mut buf = vec![f32::NAN; 300 + 4];
                let mut src = orig.clone();
                assert!(take(&mut buf[off..off + len], &mut src[..len]));
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
    fn a_drain_in_any_steps_moves_what_take_moves() {
        let orig: Vec<f32> = (0..300).map(|i| i as f32 * 0.25 - 9.0).collect();
        for off in 0..4 {
            for len in [0, 1, 3, 4, 5, 17, 64, 203, 296] {
                for step in [1, 3, 4, 8, 64, 1000] {
                    let mut buf = vec![f32::NAN; 300 + 4];
                    let mut src = orig.clone();
                    let mut d = super::Drain::new(&mut buf[off..off + len], &mut src[..len]);
                    for _ in 0..len / 7 {
                        d.step(step);
                    }
                    assert!(d.finish());
                    super::fence();
                    let at = format!("off {off} len {len} step {step}");
                    assert_eq!(&buf[off..off + len], &orig[..len], "{at}");
                    assert!(src[..len].iter().all(|&x| x == 0.0), "src zeroed, {at}");
                    assert_eq!(&src[len..], &orig[len..], "{at}");
                    assert!(buf[..off].iter().all(|x| x.is_nan()), "before, {at}");
                    assert!(buf[off + len..].iter().all(|x| x.is_nan()), "after, {at}");
                }
            }
        }
        // A non-finite value is reported whichever step moved it.
        for at in [0, 1, 2, 5, 50, 98, 99] {
            for step in [1, 4, 16] {
                let mut buf = vec![0.0f32; 101];
                let mut src: Vec<f32> = (0..100).map(|i| i as f32).collect();
                src[at] = f32::INFINITY;
                let mut d = super::Drain::new(&mut buf[1..], &mut src);
                for _ in 0..10 {
                    d.step(step);
                }
                assert!(!d.finish(), "at {at} step {step}");
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
                        !take(&mut buf[off..off + 100], &mut src),
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
        assert!(take(&mut buf, &mut src));
    }
}
