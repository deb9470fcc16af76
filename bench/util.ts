// Shared helpers of the benches: a clock, medians, a seeded generator and gaussian inputs.

/** Milliseconds from a monotonic clock. */
export const now = () => Number(process.hrtime.bigint()) / 1e6

/** Median (mean of the two middle values for an even count). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

/** Median wall time of `reps` calls of `fn`, ms. */
export function time(reps: number, fn: () => void): number {
  const out: number[] = []
  for (let i = 0; i < reps; i++) {
    const t0 = now()
    fn()
    out.push(now() - t0)
  }
  return median(out)
}

/**
 * `reps` alternating calls of `a` then `b`, so that both see the same moments of a shared
 * machine: the median time of each (ms) and the median of the per-pair ratios b / a (the
 * steadier estimate of how b compares with a).
 */
export function timePaired(reps: number, a: () => void, b: () => void): { a: number; b: number; ratio: number } {
  const ta: number[] = []
  const tb: number[] = []
  for (let i = 0; i < reps; i++) {
    let t0 = now()
    a()
    ta.push(now() - t0)
    t0 = now()
    b()
    tb.push(now() - t0)
  }
  return { a: median(ta), b: median(tb), ratio: median(tb.map((t, i) => t / ta[i])) }
}

/** Seeded uniform generator in [0, 1) (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** `n` roughly gaussian values (sum of four uniforms), scale 0.01, like real gradients. */
export function gaussian(n: number, seed: number): Float32Array {
  const r = rng(seed)
  const out = new Float32Array(n)
  for (let i = 0; i < n; i++) out[i] = (r() + r() + r() + r() - 2) * 0.01
  return out
}
