import test from 'ava'
import {
  CompressedGradient,
  CompressionConfig,
  CompressionType,
  FederatedClient,
} from '../index.js'

/** Small seeded PRNG (mulberry32) so every run sees the same inputs. */
function rng(seed: number) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function gaussian(n: number, seed: number): Float32Array {
  const r = rng(seed)
  const out = new Float32Array(n)
  for (let i = 0; i < n; i++) {
    out[i] = Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r())
  }
  return out
}

/** Brute force top-k: sort by |x| descending, then index ascending; k positions, ascending. */
function bruteTopK(x: Float32Array, k: number): number[] {
  const idx = Array.from(x.keys())
  idx.sort((a, b) => Math.abs(x[b]) - Math.abs(x[a]) || a - b)
  return idx.slice(0, k).sort((a, b) => a - b)
}

const kRule = (n: number, sparsity: number) => Math.min(n, Math.max(1, Math.round(n * (1 - sparsity))))

const topK = (sparsity: number, errorFeedback = false) =>
  new CompressionConfig({ compressionType: CompressionType.TOP_K, sparsity, errorFeedback })

test('top-k equals a brute-force sort on arrays with many ties', (t) => {
  const r = rng(1)
  for (let trial = 0; trial < 200; trial++) {
    const n = 1 + Math.floor(r() * 3000)
    const levels = 1 + Math.floor(r() * 5)
    const x = new Float32Array(n)
    for (let i = 0; i < n; i++) x[i] = (Math.floor(r() * levels) * 0.25) * (r() < 0.5 ? -1 : 1)
    const sparsity = Math.floor(r() * 1000) / 1000
    const client = new FederatedClient({ nodeId: 'n', compression: topK(sparsity) })
    const c = client.compress(x)
    const expected = bruteTopK(x, kRule(n, sparsity))
    t.deepEqual(Array.from(c.indices), expected, `n=${n} sparsity=${sparsity}`)
    t.deepEqual(Array.from(c.values), expected.map((i) => x[i]))
  }
})

test('top-k on a large array (parallel path) equals brute force', (t) => {
  const x = gaussian(400_000, 2)
  for (let i = 0; i < x.length; i += 7) x[i] = 1.5 // a large tie block
  const c = new FederatedClient({ nodeId: 'n', compression: topK(0.99) }).compress(x)
  t.deepEqual(Array.from(c.indices), bruteTopK(x, 4000))
})

test('field cases: magnitude not sign, ties to the lowest index, k clamps to [1, n]', (t) => {
  const c1 = new FederatedClient({ nodeId: 'n', compression: topK(0.75) }).compress(Float32Array.of(-10, 1, 2, 3))
  t.deepEqual(Array.from(c1.indices), [0])
  t.deepEqual(Array.from(c1.values), [-10])
  const c2 = new FederatedClient({ nodeId: 'n', compression: topK(0.5) }).compress(Float32Array.of(1, -1, 1, -1))
  t.deepEqual(Array.from(c2.indices), [0, 1])
  const c3 = new FederatedClient({ nodeId: 'n', compression: topK(0.999) }).compress(Float32Array.of(1, 2, 3))
  t.deepEqual(Array.from(c3.indices), [2]) // round(0.003) = 0 → clamped to 1
  t.is(topK(0.0).kFor(3), 3)
})

test('error feedback conserves mass over many rounds', (t) => {
  for (const compressionType of [CompressionType.TOP_K, CompressionType.RANDOM_K, CompressionType.TOP_K_QUANTIZED, CompressionType.QUANTIZATION]) {
    const client = new FederatedClient({
      nodeId: 'sat',
      compression: new CompressionConfig({ compressionType, sparsity: 0.95, errorFeedback: true, quantizationBits: 4, seed: 3 }),
    })
    const n = 5000
    const sumIn = new Float64Array(n)
    const sumSent = new Float64Array(n)
    for (let round = 0; round < 20; round++) {
      const g = gaussian(n, 100 + round)
      g.forEach((v, i) => (sumIn[i] += v))
      client.compress(g).decompress().forEach((v, i) => (sumSent[i] += v))
    }
    const residual = client.residual!
    let worst = 0
    for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(sumSent[i] + residual[i] - sumIn[i]))
    t.true(worst < 1e-3, `${compressionType}: worst error ${worst}`)
  }
})

test('random-k with a seed is reproducible and uniform', (t) => {
  const cfg = (seed: number) => new CompressionConfig({ compressionType: CompressionType.RANDOM_K, sparsity: 0.9, errorFeedback: false, seed })
  const g = gaussian(1000, 5)
  const a = new FederatedClient({ nodeId: 'a', compression: cfg(7) })
  const b = new FederatedClient({ nodeId: 'b', compression: cfg(7) })
  for (let round = 0; round < 3; round++) {
    t.deepEqual(Array.from(a.compress(g).indices), Array.from(b.compress(g).indices))
  }
  const c = new FederatedClient({ nodeId: 'c', compression: cfg(8) })
  t.notDeepEqual(Array.from(c.compress(g).indices), Array.from(new FederatedClient({ nodeId: 'd', compression: cfg(7) }).compress(g).indices))
  // Uniformity: over 600 rounds each of 1000 positions is expected 600·100/1000 = 60 times.
  const counts = new Uint32Array(1000)
  const u = new FederatedClient({ nodeId: 'u', compression: cfg(1) })
  for (let r = 0; r < 600; r++) for (const i of u.compress(g).indices) counts[i]++
  const mean = counts.reduce((s, v) => s + v, 0) / 1000
  t.is(mean, 60)
  t.true(Math.max(...counts) < 100 && Math.min(...counts) > 25)
})

test('stochastic quantization is unbiased: the mean of many draws tends to the input', (t) => {
  const x = Float32Array.from({ length: 64 }, (_, i) => Math.sin(i * 0.37) * 2)
  for (const quantizationBits of [1, 2, 4, 8]) {
    const client = new FederatedClient({
      nodeId: 'q',
      compression: new CompressionConfig({ compressionType: CompressionType.QUANTIZATION, errorFeedback: false, quantizationBits, seed: 11 }),
    })
    const draws = 3000
    const mean = new Float64Array(x.length)
    for (let d = 0; d < draws; d++) client.compress(x).decompress().forEach((v, i) => (mean[i] += v / draws))
    // Each draw lies within ±max|x| = 2 of the input: standard error ≤ 2/√3000 ≈ 0.037; allow 5σ.
    const worst = Math.max(...Array.from(mean, (m, i) => Math.abs(m - x[i])))
    t.true(worst < 5 * 2 / Math.sqrt(draws), `bits=${quantizationBits}: worst ${worst}`)
  }
  // An all-zero tensor quantizes to zeros (no 0/0).
  const z = new FederatedClient({ nodeId: 'z', compression: new CompressionConfig({ compressionType: CompressionType.QUANTIZATION, errorFeedback: false }) })
  t.true(z.compress(new Float32Array(1024)).decompress().every((v) => v === 0))
})

test('wire format: exact round trip, ratio from the real bytes, every bit flip detected', (t) => {
  const g = gaussian(20_000, 9)
  for (const compression of [
    topK(0.99),
    new CompressionConfig({ compressionType: CompressionType.TOP_K, sparsity: 0.5, errorFeedback: false, fp16Values: true }),
    new CompressionConfig({ compressionType: CompressionType.TOP_K_QUANTIZED, sparsity: 0.9, errorFeedback: false, quantizationBits: 3 }),
    new CompressionConfig({ compressionType: CompressionType.NONE, errorFeedback: false }),
  ]) {
    const c = new FederatedClient({ nodeId: 'w', compression }).compress(g)
    const buf = c.toBuffer()
    t.is(buf.length, c.wireBytes)
    t.is(c.compressionRatio, (4 * g.length) / buf.length)
    const back = CompressedGradient.fromBuffer(buf)
    t.deepEqual(Array.from(back.indices), Array.from(c.indices))
    t.deepEqual(Array.from(back.values), Array.from(c.values))
    t.is(back.length, c.length)
    t.deepEqual(Buffer.from(back.toBuffer()), Buffer.from(buf))
  }
  // Dense f32 values survive bit for bit.
  const none = new FederatedClient({ nodeId: 'w', compression: new CompressionConfig({ compressionType: CompressionType.NONE, errorFeedback: false }) })
  t.deepEqual(Array.from(CompressedGradient.fromBuffer(none.compress(g).toBuffer()).decompress()), Array.from(g))

  const small = new FederatedClient({ nodeId: 'w', compression: topK(0.9) }).compress(gaussian(300, 4)).toBuffer()
  let detected = 0
  for (let byte = 0; byte < small.length; byte++) {
    for (let bit = 0; bit < 8; bit++) {
      const b = Buffer.from(small)
      b[byte] ^= 1 << bit
      const e = t.throws(() => CompressedGradient.fromBuffer(b)) as any
      if (e.code === 'ERR_CORRUPT_DATA') detected++
    }
  }
  t.is(detected, small.length * 8)
  for (let len = 0; len < small.length; len++) {
    t.is((t.throws(() => CompressedGradient.fromBuffer(small.subarray(0, len))) as any).code, 'ERR_CORRUPT_DATA')
  }
})

test('a saved client state restores exactly and continues identically', (t) => {
  const cfg = new CompressionConfig({ compressionType: CompressionType.TOP_K_QUANTIZED, sparsity: 0.9, quantizationBits: 4, seed: 2 })
  const a = new FederatedClient({ nodeId: 'sat-7', compression: cfg })
  a.compress(gaussian(2000, 1))
  a.compress(gaussian(2000, 2))
  const b = FederatedClient.restoreState(a.saveState())
  t.is(b.nodeId, 'sat-7')
  t.deepEqual(b.stats, a.stats)
  t.deepEqual(Array.from(b.residual!), Array.from(a.residual!))
  const g = gaussian(2000, 3)
  t.deepEqual(Buffer.from(a.compress(g).toBuffer()), Buffer.from(b.compress(g).toBuffer()))
  const s = a.saveState()
  s[s.length - 10] ^= 4
  t.is((t.throws(() => FederatedClient.restoreState(s)) as any).code, 'ERR_CORRUPT_DATA')
})

test('residual is readable and resettable; stats count rounds and bytes', (t) => {
  const client = new FederatedClient({ nodeId: 'sat-001', compression: topK(0.5, true) })
  t.is(client.residual, null)
  const c = client.compress(Float32Array.of(4, -1, 3, 2))
  t.deepEqual(Array.from(c.indices), [0, 2])
  t.deepEqual(Array.from(client.residual!), [0, -1, 0, 2])
  const c2 = client.compress(Float32Array.of(0, -2, 0, 0)) // accumulated: [0, -3, 0, 2]
  t.deepEqual(Array.from(c2.indices), [1, 3])
  t.deepEqual(Array.from(c2.values), [-3, 2])
  t.deepEqual(client.stats.rounds, 2)
  t.is(client.stats.bytesIn, 32)
  t.is(client.stats.bytesOut, c.wireBytes + c2.wireBytes)
  client.resetResidual()
  t.is(client.residual, null)
  t.notThrows(() => client.compress(new Float32Array(9).fill(1))) // a new length is fine after a reset
})

test('bad input gets coded errors and leaves the state unchanged', (t) => {
  const client = new FederatedClient({ nodeId: 'sat', compression: topK(0.75, true) })
  client.compress(Float32Array.of(1, 2, 3, 4, 5, 6, 7, 8))
  const before = Array.from(client.residual!)
  const nan = t.throws(() => client.compress(Float32Array.of(0, 0, 0, Number.NaN, 0, 0, 0, 0))) as any
  t.is(nan.code, 'ERR_NON_FINITE')
  t.regex(nan.message, /gradients\[3\]/)
  const inf = t.throws(() => client.compress(Float32Array.of(0, -Infinity, 0, 0, 0, 0, 0, 0))) as any
  t.is(inf.code, 'ERR_NON_FINITE')
  t.regex(inf.message, /gradients\[1\] is -inf/i)
  t.is((t.throws(() => client.compress(new Float32Array(9))) as any).code, 'ERR_LENGTH_MISMATCH')
  t.deepEqual(Array.from(client.residual!), before)
  t.is((t.throws(() => client.compress(new Float32Array(0))) as any).code, 'ERR_INVALID_ARG')
  const f64 = t.throws(() => client.compress(new Float64Array(8) as any)) as any
  t.is(f64.code, 'ERR_INVALID_ARG')
  t.regex(f64.message, /Float64Array/)
  t.is((t.throws(() => client.compress('abc' as any)) as any).code, 'ERR_INVALID_ARG')
  t.is((t.throws(() => client.compress([1, 'x', 3] as any)) as any).code, 'ERR_INVALID_ARG')
  for (const sparsity of [-0.1, 1, 1.5, Number.NaN]) {
    const e = t.throws(() => new CompressionConfig({ sparsity })) as any
    t.is(e.code, 'ERR_INVALID_ARG')
    t.regex(e.message, /sparsity/)
  }
  for (const quantizationBits of [0, 17, 2.5]) {
    const e = t.throws(() => new CompressionConfig({ quantizationBits })) as any
    t.is(e.code, 'ERR_INVALID_ARG')
    t.regex(e.message, /quantizationBits/)
  }
  t.is((t.throws(() => new FederatedClient({ nodeId: '' })) as any).code, 'ERR_INVALID_ARG')
  // Detached buffers are refused, not read as empty.
  const ab = new ArrayBuffer(32)
  const view = new Float32Array(ab)
  structuredClone(ab, { transfer: [ab] })
  t.is((t.throws(() => client.compress(view)) as any).code, 'ERR_DETACHED_BUFFER')
})

test('number[] is accepted and converted; subarray views are read at their offset', (t) => {
  const a = new FederatedClient({ nodeId: 'a', compression: topK(0.5, false) })
  t.deepEqual(Array.from(a.compress([1, -5, 2, 0.5]).indices), [1, 2])
  const big = Float32Array.of(100, 100, 1, -7, 3, 0)
  t.deepEqual(Array.from(a.compress(big.subarray(2)).values), [-7, 3])
})

test('compressAsync equals compress, snapshots its input and keeps calls in order', async (t) => {
  const cfg = new CompressionConfig({ compressionType: CompressionType.TOP_K, sparsity: 0.99, seed: 1 })
  const a = new FederatedClient({ nodeId: 'a', compression: cfg })
  const b = new FederatedClient({ nodeId: 'b', compression: cfg })
  const g = gaussian(300_000, 8)
  const expected = Buffer.from(a.compress(g).toBuffer())
  const copy = g.slice()
  const pending = b.compressAsync(g)
  g.fill(0) // the async call copied its input before returning
  t.is((t.throws(() => b.compress(copy)) as any).code, 'ERR_BUSY')
  t.deepEqual(Buffer.from((await pending).toBuffer()), expected)
  t.deepEqual(Array.from(b.residual!.subarray(0, 1000)), Array.from(a.residual!.subarray(0, 1000)))
  const e = await t.throwsAsync(b.compressAsync(Float32Array.of(1, Number.NaN)))
  t.is((e as any).code, 'ERR_NON_FINITE')
})

test('SharedArrayBuffer-backed gradients are read (sync) and snapshotted (async)', async (t) => {
  const sab = new SharedArrayBuffer(4 * 8)
  const g = new Float32Array(sab)
  g.set([1, 9, 2, 8, 3, 7, 4, 6])
  const c = new FederatedClient({ nodeId: 's', compression: topK(0.75, false) })
  t.deepEqual(Array.from(c.compress(g).indices), [1, 3])
  const p = c.compressAsync(g)
  g.fill(0)
  t.deepEqual(Array.from((await p).indices), [1, 3])
})

test('presets and applyUpdate (parity with the published package)', (t) => {
  t.is(CompressionConfig.balanced().compressionType, CompressionType.TOP_K_QUANTIZED)
  t.is(CompressionConfig.highCompression().quantizationBits, 4)
  t.false(CompressionConfig.lowCompression().errorFeedback)
  const c = new FederatedClient({ nodeId: 'a' })
  t.is(c.compression.sparsity, 0.99)
  t.deepEqual(Array.from(c.applyUpdate(Float32Array.of(1, 2), Float32Array.of(10, -10), 0.5)), [-4, 7])
  t.is((t.throws(() => c.applyUpdate(Float32Array.of(1), Float32Array.of(1, 2))) as any).code, 'ERR_LENGTH_MISMATCH')
})
