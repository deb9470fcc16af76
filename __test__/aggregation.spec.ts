import test, { type ExecutionContext } from 'ava'
import { spawnSync } from 'node:child_process'
import {
  AggregationStrategy,
  CompressedGradient,
  CompressionConfig,
  CompressionType,
  FederatedClient,
  GradientAggregator,
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
  for (let i = 0; i < n; i++) out[i] = Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r())
  return out
}

function assertClose(t: any, actual: Float32Array, expected: ArrayLike<number>, tol = 1e-5, what = '') {
  t.is(actual.length, expected.length, `${what} length`)
  let worst = 0
  let at = -1
  for (let i = 0; i < actual.length; i++) {
    const err = Math.abs(actual[i] - expected[i]) / (1 + Math.abs(expected[i]))
    if (!(err <= worst)) {
      worst = err
      at = i
    }
  }
  t.true(worst <= tol, `${what} worst relative error ${worst} at ${at}: ${actual[at]} vs ${expected[at]}`)
}

// ---- Plain-JS references -------------------------------------------------------------

function dense(g: Float32Array | CompressedGradient): Float32Array {
  return g instanceof Float32Array ? g : g.decompress()
}

function refWeightedMean(gs: Float32Array[], w: number[]): number[] {
  const total = w.reduce((a, b) => a + b, 0)
  const out = new Array(gs[0].length).fill(0)
  for (let i = 0; i < gs.length; i++) for (let j = 0; j < out.length; j++) out[j] += (w[i] / total) * gs[i][j]
  return out
}

function column(gs: Float32Array[], j: number): number[] {
  return gs.map((g) => g[j]).sort((a, b) => a - b)
}

function refMedian(gs: Float32Array[]): number[] {
  const m = gs.length
  return Array.from({ length: gs[0].length }, (_, j) => {
    const c = column(gs, j)
    return m % 2 ? c[(m - 1) / 2] : (c[m / 2 - 1] + c[m / 2]) / 2
  })
}

function refTrimmedMean(gs: Float32Array[], beta: number): number[] {
  const m = gs.length
  const k = Math.min(Math.floor(beta * m), Math.floor((m - 1) / 2))
  return Array.from({ length: gs[0].length }, (_, j) => {
    const c = column(gs, j).slice(k, m - k)
    return c.reduce((a, b) => a + b, 0) / c.length
  })
}

function refKrumScores(gs: Float32Array[], f: number): number[] {
  const m = gs.length
  const d = (a: Float32Array, b: Float32Array) => {
    let s = 0
    for (let j = 0; j < a.length; j++) s += (a[j] - b[j]) ** 2
    return s
  }
  return gs.map((g, i) => {
    const ds = gs.filter((_, k) => k !== i).map((h) => d(g, h)).sort((a, b) => a - b)
    return ds.slice(0, m - f - 2).reduce((a, b) => a + b, 0)
  })
}

function argsortScores(scores: number[]): number[] {
  return scores.map((s, i) => [s, i]).sort((a, b) => a[0] - b[0] || a[1] - b[1]).map((p) => p[1])
}

const topK = (sparsity: number) =>
  new CompressionConfig({ compressionType: CompressionType.TOP_K, sparsity, errorFeedback: false })

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (e: any) {
    return e.code
  }
  return undefined
}

// ---- README ---------------------------------------------------------------------------

test('the README example: FEDAVG with weights [0.4, 0.3, 0.3]', (t) => {
  const grad1 = gaussian(1000, 1)
  const grad2 = gaussian(1000, 2)
  const grad3 = gaussian(1000, 3)
  const aggregator = new GradientAggregator({ strategy: AggregationStrategy.FEDAVG })
  const aggregated = aggregator.aggregate([grad1, grad2, grad3], { weights: [0.4, 0.3, 0.3] })
  t.true(aggregated instanceof Float32Array)
  assertClose(t, aggregated, refWeightedMean([grad1, grad2, grad3], [0.4, 0.3, 0.3]))
  t.is(AggregationStrategy.FEDAVG, 'fedavg' as AggregationStrategy)
  t.is(AggregationStrategy.ASYNC_FEDAVG, 'async_fedavg' as AggregationStrategy)
})

// ---- Strategies against references ----------------------------------------------------

test('FEDAVG / WEIGHTED_AVG on random mixed inputs (dense, CompressedGradient, wire bytes) equal the JS reference', (t) => {
  const r = rng(11)
  for (let trial = 0; trial < 30; trial++) {
    const n = 1 + Math.floor(r() * 40_000)
    const m = 1 + Math.floor(r() * 7)
    const inputs: Array<Float32Array | CompressedGradient | Buffer> = []
    const asDense: Float32Array[] = []
    for (let i = 0; i < m; i++) {
      const g = gaussian(n, trial * 100 + i)
      const kind = Math.floor(r() * 3)
      if (kind === 0) {
        inputs.push(g)
        asDense.push(g)
      } else {
        const c = new FederatedClient({ nodeId: 'c', compression: topK(0.9) }).compress(g)
        inputs.push(kind === 1 ? c : c.toBuffer())
        asDense.push(c.decompress())
      }
    }
    const w = Array.from({ length: m }, () => r() * 10)
    w[0] += 0.1
    for (const strategy of [AggregationStrategy.FEDAVG, AggregationStrategy.WEIGHTED_AVG]) {
      const out = new GradientAggregator({ strategy }).aggregate(inputs, { weights: w })
      assertClose(t, out, refWeightedMean(asDense, w), 1e-5, `trial ${trial} ${strategy}`)
    }
    // No weights: equal weights.
    assertClose(t, new GradientAggregator().aggregate(inputs), refWeightedMean(asDense, new Array(m).fill(1)))
  }
})

test('FEDAVG of identical inputs is that input, whatever the weights', (t) => {
  const g = gaussian(5000, 5)
  const out = new GradientAggregator().aggregate([g, g, g, g], { weights: [1, 1000, 0, 3e-6] })
  assertClose(t, out, g, 1e-6)
})

test('MEDIAN and TRIMMED_MEAN equal the JS reference on random inputs (odd and even counts)', (t) => {
  const r = rng(12)
  for (let trial = 0; trial < 12; trial++) {
    const m = 1 + Math.floor(r() * 20)
    const n = 1 + Math.floor(r() * 6000)
    const gs = Array.from({ length: m }, (_, i) => gaussian(n, 500 + trial * 50 + i))
    assertClose(t, new GradientAggregator({ strategy: AggregationStrategy.MEDIAN }).aggregate(gs), refMedian(gs), 1e-6, `median m=${m}`)
    const beta = Math.floor(r() * 50) / 100
    const tm = new GradientAggregator({ strategy: AggregationStrategy.TRIMMED_MEAN, trimFraction: beta }).aggregate(gs)
    assertClose(t, tm, refTrimmedMean(gs, beta), 1e-5, `trimmed m=${m} beta=${beta}`)
  }
})

test('MEDIAN and TRIMMED_MEAN ignore a minority of huge outliers', (t) => {
  const honest = Array.from({ length: 7 }, (_, i) => gaussian(2000, 900 + i))
  const bad = [new Float32Array(2000).fill(1e30), new Float32Array(2000).fill(-3e38)]
  const all = [...honest, ...bad]
  const med = new GradientAggregator({ strategy: AggregationStrategy.MEDIAN }).aggregate(all)
  const tm = new GradientAggregator({ strategy: AggregationStrategy.TRIMMED_MEAN, trimFraction: 0.2 }).aggregate(all)
  for (const out of [med, tm]) {
    for (let j = 0; j < out.length; j++) {
      const c = column(honest, j)
      t.true(out[j] >= c[0] && out[j] <= c[c.length - 1], `coordinate ${j} = ${out[j]} left the honest range`)
    }
  }
  assertClose(t, med, refMedian(all), 1e-6)
})

test('KRUM and MULTI_KRUM equal the JS reference and never select a planted outlier when n > 2f + 2', (t) => {
  const r = rng(13)
  for (let trial = 0; trial < 25; trial++) {
    const f = 1 + Math.floor(r() * 3)
    const m = 2 * f + 3 + Math.floor(r() * 5)
    const n = 50 + Math.floor(r() * 300)
    const gs = Array.from({ length: m }, (_, i) => gaussian(n, 2000 + trial * 40 + i))
    const bad = new Set<number>()
    while (bad.size < f) bad.add(Math.floor(r() * m))
    for (const b of bad) {
      const shift = (r() < 0.5 ? -1 : 1) * (3 + 30 * r())
      for (let j = 0; j < n; j++) gs[b][j] += shift
    }
    const order = argsortScores(refKrumScores(gs, f))
    const krum = new GradientAggregator({ strategy: AggregationStrategy.KRUM, faultyNodes: f })
    const out = krum.aggregate(gs)
    const sel = krum.getStats().lastSelected[0]
    t.is(sel, order[0], `trial ${trial}`)
    t.false(bad.has(sel), `trial ${trial}: Krum selected planted outlier ${sel}`)
    t.deepEqual(Array.from(out), Array.from(gs[sel]))
    const w = gs.map(() => 0.5 + r())
    const mk = new GradientAggregator({ strategy: AggregationStrategy.MULTI_KRUM, faultyNodes: f })
    const mo = mk.aggregate(gs, { weights: w })
    const chosen = order.slice(0, m - f)
    t.deepEqual(mk.getStats().lastSelected, chosen)
    t.true(chosen.every((i) => !bad.has(i)))
    assertClose(t, mo, refWeightedMean(chosen.map((i) => gs[i]), chosen.map((i) => w[i])), 1e-5)
  }
})

test('KRUM with too few inputs for its fault bound is ERR_NO_CLIENTS naming the bound', (t) => {
  const gs = Array.from({ length: 6 }, (_, i) => gaussian(10, i))
  const e = t.throws(() => new GradientAggregator({ strategy: AggregationStrategy.KRUM, faultyNodes: 2 }).aggregate(gs))
  t.is((e as any).code, 'ERR_NO_CLIENTS')
  t.regex(e!.message, /faultyNodes = 2 needs more than 2·2 \+ 2 = 6 updates, got 6/)
  t.notThrows(() => new GradientAggregator({ strategy: AggregationStrategy.KRUM, faultyNodes: 2 }).aggregate([...gs, gs[0]]))
})

test('FEDAVGM / FEDADAM / FEDYOGI follow the JS reference over several rounds, with and without a global model', (t) => {
  const n = 3000
  const defaults: Record<string, { lr: number }> = { fedavgm: { lr: 1 }, fedadam: { lr: 0.1 }, fedyogi: { lr: 0.01 } }
  for (const strategy of [AggregationStrategy.FEDAVGM, AggregationStrategy.FEDADAM, AggregationStrategy.FEDYOGI]) {
    const x0 = gaussian(n, 42)
    const withModel = new GradientAggregator({ strategy, globalModel: x0 })
    const stepOnly = new GradientAggregator({ strategy })
    const x = Array.from(x0)
    const mom = new Array(n).fill(0)
    const v = new Array(n).fill(0)
    const { lr } = defaults[strategy]
    for (let round = 0; round < 4; round++) {
      const gs = Array.from({ length: 3 }, (_, i) => gaussian(n, 100 * round + i))
      const w = [1, 2, 3]
      const d = refWeightedMean(gs, w)
      const step = new Array(n)
      for (let j = 0; j < n; j++) {
        if (strategy === AggregationStrategy.FEDAVGM) {
          mom[j] = 0.9 * mom[j] + d[j]
          step[j] = lr * mom[j]
        } else {
          mom[j] = 0.9 * mom[j] + 0.1 * d[j]
          const g2 = d[j] * d[j]
          v[j] = strategy === AggregationStrategy.FEDADAM ? 0.99 * v[j] + 0.01 * g2 : v[j] - 0.01 * g2 * Math.sign(v[j] - g2)
          step[j] = (lr * mom[j]) / (Math.sqrt(v[j]) + 1e-3)
        }
        x[j] += step[j]
      }
      assertClose(t, withModel.aggregate(gs, { weights: w }), x, 1e-4, `${strategy} round ${round} model`)
      assertClose(t, stepOnly.aggregate(gs, { weights: w }), step, 1e-4, `${strategy} round ${round} step`)
    }
    assertClose(t, withModel.globalModel!, x, 1e-4)
    t.is(withModel.getStats().optimizerSteps, 4)
  }
})

test('ASYNC_FEDAVG weights each update by (1 + staleness)^-a, configurable, and drops beyond maxStaleness', (t) => {
  const n = 1000
  const gs = Array.from({ length: 4 }, (_, i) => gaussian(n, 70 + i))
  const staleness = [0, 1, 3, 9]
  for (const a of [0.5, 0, 2]) {
    const agg = new GradientAggregator({ strategy: AggregationStrategy.ASYNC_FEDAVG, stalenessExponent: a })
    const w = staleness.map((s) => (1 + s) ** -a)
    assertClose(t, agg.aggregate(gs, { staleness }), refWeightedMean(gs, w), 1e-5, `a=${a}`)
  }
  const capped = new GradientAggregator({ strategy: AggregationStrategy.ASYNC_FEDAVG, maxStaleness: 3 })
  const w = staleness.map((s) => (s <= 3 ? (1 + s) ** -0.5 : 0))
  assertClose(t, capped.aggregate(gs, { staleness }), refWeightedMean(gs, w), 1e-5)
  t.is(capped.getStats().lastDroppedStale, 1)
  t.is(codeOf(() => new GradientAggregator().aggregate(gs, { staleness })), 'ERR_INVALID_ARG')
})

// ---- Streaming, the mission demo, peer parity ----------------------------------------

test('the mission demo: ASYNC_FEDAVG add(id, compressed, { samples, round }) then finish({ round })', (t) => {
  const n = 20_000
  let model = new Float32Array(n)
  let version = 0
  const sats = Array.from({ length: 6 }, (_, i) => ({
    id: `sat-${i}`,
    client: new FederatedClient({ nodeId: `sat-${i}`, compression: new CompressionConfig({ sparsity: 0.95 }) }),
  }))
  for (let pass = 0; pass < 3; pass++) {
    const aggregator = new GradientAggregator({ strategy: AggregationStrategy.ASYNC_FEDAVG })
    const expectedDense: Float32Array[] = []
    const expectedW: number[] = []
    sats.forEach((s, i) => {
      const baseVersion = Math.max(0, version - (i % 3))
      const n_ = 100 + i * 10
      const compressedGradient = s.client.compress(gaussian(n, pass * 10 + i))
      aggregator.add(s.id, compressedGradient, { samples: n_, round: baseVersion })
      expectedDense.push(compressedGradient.decompress())
      expectedW.push(n_ * (1 + version - baseVersion) ** -0.5)
    })
    const update = aggregator.finish({ round: version })
    t.true(update instanceof Float32Array)
    assertClose(t, update, refWeightedMean(expectedDense, expectedW), 1e-5, `pass ${pass}`)
    for (let j = 0; j < n; j++) model[j] += update[j]
    version++
    t.is(aggregator.round, version)
  }
  t.true(model.every((x) => Number.isFinite(x)))
})

test('streaming add/finish equals one-shot aggregate; duplicate node in a round is ERR_DUPLICATE_NODE', (t) => {
  const gs = Array.from({ length: 5 }, (_, i) => gaussian(3000, 300 + i))
  const samples = [10, 20, 30, 40, 50]
  for (const strategy of Object.values(AggregationStrategy)) {
    const opts = strategy === AggregationStrategy.KRUM || strategy === AggregationStrategy.MULTI_KRUM ? { faultyNodes: 1 } : {}
    const s = new GradientAggregator({ strategy, ...opts })
    gs.forEach((g, i) => s.add(`n${i}`, g, { samples: samples[i] }))
    t.is(codeOf(() => s.add('n0', gs[0])), 'ERR_DUPLICATE_NODE')
    const streamed = s.finish()
    const oneShot = new GradientAggregator({ strategy, ...opts }).aggregate(gs, {
      weights: strategy === AggregationStrategy.WEIGHTED_AVG ? undefined : samples,
    })
    assertClose(t, streamed, oneShot, 1e-5, strategy)
    // The next round accepts n0 again.
    t.notThrows(() => s.add('n0', gs[0]))
  }
})

test('peer parity: minParticipants, receiveGradients, numParticipants, readyToAggregate, getStats', (t) => {
  const agg = new GradientAggregator({ strategy: AggregationStrategy.FEDAVG, minParticipants: 3 })
  const g = [Float32Array.of(1, 2), Float32Array.of(3, 4), Float32Array.of(5, 6)]
  agg.receiveGradients('a', g[0], 1)
  agg.receiveGradients('b', g[1], 2)
  t.is(agg.numParticipants, 2)
  t.false(agg.readyToAggregate())
  t.false(agg.ready())
  const e = t.throws(() => agg.finish())
  t.is((e as any).code, 'ERR_NO_CLIENTS')
  t.regex(e!.message, /minParticipants is 3/)
  agg.receiveGradients('c', g[2], 1)
  t.true(agg.readyToAggregate())
  const st = agg.getStats()
  t.is(st.pendingParticipants, 3)
  t.is(st.minParticipants, 3)
  t.is(st.pendingSamples, 4)
  t.is(st.round, 0)
  assertClose(t, agg.finish(), refWeightedMean(g, [1, 2, 1]))
  const after = agg.stats
  t.is(after.round, 1)
  t.is(after.completedRounds, 1)
  t.is(after.pendingParticipants, 0)
  t.is(after.lastParticipants, 3)
  t.is(after.strategy, AggregationStrategy.FEDAVG)
})

test('toBuffer/merge: a tree of partial aggregators equals one aggregator seeing everything', (t) => {
  const n = 10_000
  const r = rng(14)
  for (const strategy of [AggregationStrategy.FEDAVG, AggregationStrategy.ASYNC_FEDAVG, AggregationStrategy.TRIMMED_MEAN, AggregationStrategy.FEDADAM]) {
    const updates = Array.from({ length: 12 }, (_, i) => {
      const g = gaussian(n, 4000 + i)
      const grad = i % 2 ? new FederatedClient({ nodeId: 'x', compression: topK(0.99) }).compress(g) : g
      return { id: `sat-${i}`, grad, samples: 1 + Math.floor(r() * 100), round: 5 + Math.floor(r() * 3) }
    })
    const root = new GradientAggregator({ strategy, clipNorm: 50 })
    const single = new GradientAggregator({ strategy, clipNorm: 50 })
    for (const u of updates) single.add(u.id, u.grad, { samples: u.samples, round: u.round })
    // Three plane leaders, then the ground.
    const leaders = [0, 1, 2].map(() => new GradientAggregator({ strategy, clipNorm: 50 }))
    updates.forEach((u, i) => leaders[i % 3].add(u.id, u.grad, { samples: u.samples, round: u.round }))
    const bufs = leaders.map((l) => l.toBuffer())
    t.is(leaders[0].numParticipants, 4)
    leaders[0].clear()
    t.is(leaders[0].numParticipants, 0)
    for (const b of bufs) root.merge(b)
    t.is(codeOf(() => root.merge(bufs[1])), 'ERR_DUPLICATE_NODE')
    t.is(root.numParticipants, 12)
    assertClose(t, root.finish({ round: 8 }), single.finish({ round: 8 }), 1e-5, strategy)
  }
})

test('merge refuses damaged buffers (ERR_CORRUPT_DATA) and other strategies or clip norms (ERR_INVALID_ARG)', (t) => {
  const a = new GradientAggregator({ strategy: AggregationStrategy.FEDAVG })
  a.add('s1', gaussian(100, 1))
  const buf = a.toBuffer()
  const b = new GradientAggregator({ strategy: AggregationStrategy.FEDAVG })
  for (let cut = 0; cut < buf.length; cut += 7) t.is(codeOf(() => b.merge(buf.subarray(0, cut))), 'ERR_CORRUPT_DATA')
  for (let i = 0; i < buf.length; i += 5) {
    const c = Buffer.from(buf)
    c[i] ^= 0x01
    t.is(codeOf(() => b.merge(c)), 'ERR_CORRUPT_DATA', `flip at ${i}`)
  }
  t.is(codeOf(() => new GradientAggregator({ strategy: AggregationStrategy.MEDIAN }).merge(buf)), 'ERR_INVALID_ARG')
  const clipErr = t.throws(() => new GradientAggregator({ clipNorm: 1 }).merge(buf))
  t.is((clipErr as any).code, 'ERR_INVALID_ARG')
  t.regex(clipErr!.message, /clipped with clipNorm none but this aggregator uses 1$/)
  t.is(b.numParticipants, 0)
  b.merge(buf)
  t.is(b.numParticipants, 1)
})

// ---- Differential privacy ---------------------------------------------------------------

test('DP: clipping to clipNorm, seeded Gaussian noise of the stated size, reported in stats', (t) => {
  const n = 200_000
  const gs = Array.from({ length: 4 }, (_, i) => gaussian(n, 60 + i)) // norms ≈ 447, all clipped to 1
  const opts = { strategy: AggregationStrategy.FEDAVG, clipNorm: 1, noiseMultiplier: 1.5, seed: 7 }
  const a = new GradientAggregator(opts)
  const x = a.aggregate(gs, { weights: [1, 1, 1, 1] })
  const y = new GradientAggregator(opts).aggregate(gs, { weights: [1, 1, 1, 1] })
  t.deepEqual(Buffer.from(x.buffer), Buffer.from(y.buffer)) // same seed, same bits
  const z = new GradientAggregator({ ...opts, seed: 8 }).aggregate(gs, { weights: [1, 1, 1, 1] })
  t.notDeepEqual(Buffer.from(x.buffer), Buffer.from(z.buffer))
  const st = a.getStats()
  t.is(st.clipNorm, 1)
  t.is(st.noiseMultiplier, 1.5)
  t.is(st.lastClipped, 4)
  t.is(st.lastNoiseStd, (1.5 * 1 * 1) / 4)
  // Without noise the clipped mean is exactly the mean of g/‖g‖ (reference in JS).
  const clippedOnly = new GradientAggregator({ clipNorm: 1 }).aggregate(gs)
  const unit = gs.map((g) => {
    const norm = Math.sqrt(g.reduce((s, v) => s + v * v, 0))
    return Float32Array.from(g, (v) => v / norm)
  })
  assertClose(t, clippedOnly, refWeightedMean(unit, [1, 1, 1, 1]), 1e-5)
  // The noise is x − clipped mean: empirical std ≈ σ·C/n.
  let ss = 0
  for (let j = 0; j < n; j++) ss += (x[j] - clippedOnly[j]) ** 2
  const std = Math.sqrt(ss / n)
  t.true(Math.abs(std - 0.375) < 0.005, `noise std ${std}`)
  t.is(codeOf(() => new GradientAggregator({ noiseMultiplier: 1 })), 'ERR_INVALID_ARG')
  t.is(codeOf(() => new GradientAggregator({ strategy: AggregationStrategy.MEDIAN, clipNorm: 1, noiseMultiplier: 1 })), 'ERR_INVALID_ARG')
})

// ---- Bad input (CASES 13 and the rest) -------------------------------------------------

test('CASES 13: zero, negative, NaN and infinite weights, length mismatch, empty list; never a NaN output', (t) => {
  const agg = new GradientAggregator({ strategy: AggregationStrategy.FEDAVG })
  const a = Float32Array.of(1, 2)
  const b = Float32Array.of(3, 4)
  let e = t.throws(() => agg.aggregate([a, b], { weights: [0, 0] }))
  t.is((e as any).code, 'ERR_ZERO_TOTAL_WEIGHT')
  for (const w of [[-1, 2], [NaN, 1], [Infinity, 1]]) {
    e = t.throws(() => agg.aggregate([a, b], { weights: w }))
    t.is((e as any).code, 'ERR_INVALID_WEIGHT')
    t.regex(e!.message, new RegExp(`weights\\[0\\] is ${w[0] === -1 ? '-1' : w[0] === Infinity ? 'inf' : 'NaN'}`, 'i'))
  }
  e = t.throws(() => agg.aggregate([a, Float32Array.of(1, 2, 3)]))
  t.is((e as any).code, 'ERR_LENGTH_MISMATCH')
  t.regex(e!.message, /grads\[1\] has length 3 but grads\[0\] has length 2/)
  e = t.throws(() => agg.aggregate([]))
  t.is((e as any).code, 'ERR_NO_CLIENTS')
  e = t.throws(() => agg.aggregate([a, b], { weights: [1, 2, 3] }))
  t.is((e as any).code, 'ERR_LENGTH_MISMATCH')
  t.regex(e!.message, /weights has 3 entries but grads has 2/)
  e = t.throws(() => agg.aggregate([a, Float32Array.of(0, Infinity)]))
  t.is((e as any).code, 'ERR_NON_FINITE')
  t.regex(e!.message, /grads\[1\]\[1\] is inf/)
  // Streaming forms of the same.
  const s = new GradientAggregator()
  t.is(codeOf(() => s.finish()), 'ERR_NO_CLIENTS')
  t.is(codeOf(() => s.add('x', a, { weight: -1 })), 'ERR_INVALID_WEIGHT')
  t.is(codeOf(() => s.add('x', a, { samples: NaN })), 'ERR_INVALID_WEIGHT')
  s.add('x', a, { weight: 0 })
  s.add('y', b, { samples: 0 })
  t.is(codeOf(() => s.add('z', Float32Array.of(1, 2, 3))), 'ERR_LENGTH_MISMATCH')
  t.is(codeOf(() => s.add('z', Float32Array.of(NaN, 2))), 'ERR_NON_FINITE')
  t.is(codeOf(() => s.finish()), 'ERR_ZERO_TOTAL_WEIGHT')
  s.add('z', b, { weight: 2 })
  t.deepEqual(Array.from(s.finish()), [3, 4])
  // Never NaN, for every strategy, on valid input with zero weights mixed in.
  for (const strategy of Object.values(AggregationStrategy)) {
    const gs = Array.from({ length: 5 }, (_, i) => gaussian(64, i))
    const out = new GradientAggregator({ strategy }).aggregate(gs, { weights: [0, 1, 0, 1, 1] })
    t.true(out.every((v) => Number.isFinite(v)), strategy)
  }
})

test('bad options and inputs are coded errors naming the argument', (t) => {
  t.is(codeOf(() => new GradientAggregator({ trimFraction: 0.5 })), 'ERR_INVALID_ARG')
  t.is(codeOf(() => new GradientAggregator({ faultyNodes: 1.5 })), 'ERR_INVALID_ARG')
  t.is(codeOf(() => new GradientAggregator({ minParticipants: 0 })), 'ERR_INVALID_ARG')
  t.is(codeOf(() => new GradientAggregator({ clipNorm: -1 })), 'ERR_INVALID_ARG')
  t.is(codeOf(() => new GradientAggregator({ serverLearningRate: NaN })), 'ERR_INVALID_ARG')
  t.is(codeOf(() => new GradientAggregator({ strategy: 'nope' as any })), 'ERR_INVALID_ARG')
  t.is(codeOf(() => new GradientAggregator(5 as any)), 'ERR_INVALID_ARG')
  const agg = new GradientAggregator()
  t.is(codeOf(() => agg.aggregate([Float32Array.of(1)], { weights: 'x' as any })), 'ERR_INVALID_ARG')
  t.is(codeOf(() => agg.aggregate([Float32Array.of(1)], { out: [0] as any })), 'ERR_INVALID_ARG')
  t.is(codeOf(() => agg.add('n', Float32Array.of(1), { weight: 'heavy' as any })), 'ERR_INVALID_ARG')
  t.is(codeOf(() => agg.finish({ round: 'now' as any })), 'ERR_INVALID_ARG')
  let e = t.throws(() => agg.aggregate([Float32Array.of(1), new Float64Array(1) as any]))
  t.is((e as any).code, 'ERR_INVALID_ARG')
  t.regex(e!.message, /grads\[1\] must be a Float32Array/)
  e = t.throws(() => agg.aggregate('nope' as any))
  t.is((e as any).code, 'ERR_INVALID_ARG')
  t.is(codeOf(() => agg.aggregate([Float32Array.of(1), Buffer.from('garbage!')])), 'ERR_CORRUPT_DATA')
  t.is(codeOf(() => agg.add('', Float32Array.of(1))), 'ERR_INVALID_ARG')
  t.is(codeOf(() => agg.finish({ round: -1 })), 'ERR_INVALID_ARG')
  const g = new Float32Array(8)
  structuredClone(g.buffer, { transfer: [g.buffer] })
  t.is(codeOf(() => agg.aggregate([g])), 'ERR_DETACHED_BUFFER')
  // Options name the bad entry and what was found there; a detached `out` is named as such.
  e = t.throws(() => agg.aggregate([Float32Array.of(1), Float32Array.of(2)], { weights: [1, '2' as any] }))
  t.is((e as any).code, 'ERR_INVALID_ARG')
  t.regex(e!.message, /weights\[1\] must be a number, got the string "2"/)
  e = t.throws(() => agg.aggregateSparse([], { staleness: {} as any }))
  t.regex(e!.message, /staleness must be an array of numbers, got an object/)
  for (const [out, found] of [['x', 'string'], [[0], 'an array'], [new Float64Array(1), 'a Float64Array'], [{}, 'an object']] as const) {
    e = t.throws(() => agg.aggregate([Float32Array.of(1)], { out: out as any }))
    t.is((e as any).code, 'ERR_INVALID_ARG')
    t.is(e!.message, `out must be a Float32Array, got ${found}`)
  }
  const gone = new Float32Array(1)
  structuredClone(gone.buffer, { transfer: [gone.buffer] })
  e = t.throws(() => agg.aggregate([Float32Array.of(1)], { out: gone }))
  t.is((e as any).code, 'ERR_DETACHED_BUFFER')
  t.regex(e!.message, /^out is a view of a detached ArrayBuffer/)
  // A number[] value beyond the f32 range is named as given, not as the Infinity it would become.
  e = t.throws(() => agg.aggregate([[1, 1e39]]))
  t.is((e as any).code, 'ERR_NON_FINITE')
  t.regex(e!.message, /grads\[0\]\[1\] is 1e39, beyond the f32 range/)
  // A staleness discount that underflows is said to be one (not "staler than maxStaleness").
  const slow = new GradientAggregator({ strategy: AggregationStrategy.ASYNC_FEDAVG, stalenessExponent: 100 })
  e = t.throws(() => slow.aggregate([Float32Array.of(1), Float32Array.of(2)], { staleness: [1e15, 1e15] }))
  t.is((e as any).code, 'ERR_ZERO_TOTAL_WEIGHT')
  t.regex(e!.message, /\(1 \+ staleness\)\^-100 underflows to 0/)
  const m = new GradientAggregator({ strategy: AggregationStrategy.FEDADAM, globalModel: new Float32Array(4) })
  t.is(codeOf(() => m.aggregate([new Float32Array(3)])), 'ERR_LENGTH_MISMATCH')
  // A future round in ASYNC_FEDAVG is refused at finish, and the round is kept.
  const a = new GradientAggregator({ strategy: AggregationStrategy.ASYNC_FEDAVG })
  a.add('s', Float32Array.of(1), { round: 5 })
  t.is(codeOf(() => a.finish({ round: 4 })), 'ERR_INVALID_ARG')
  t.deepEqual(Array.from(a.finish({ round: 5 })), [1])
})

test('caller code run while arguments are read (getters) cannot free an array already borrowed', async (t) => {
  // Every JS value is read before any array is borrowed: a getter that transfers (detaches)
  // an input or `out` is then seen as a detached buffer, never read or written after free.
  const agg = new GradientAggregator()
  const fresh = () => [new Float32Array(1000).fill(1), new Float32Array(1000).fill(3)]
  const transfer = (a: Float32Array) => structuredClone(a.buffer, { transfer: [a.buffer] })
  // A getter on weights[1] transfers grads[0].
  let gs = fresh()
  let weights: number[] = [1]
  Object.defineProperty(weights, 1, { get: () => (transfer(gs[0]), 1), enumerable: true })
  t.is(codeOf(() => agg.aggregate(gs, { weights })), 'ERR_DETACHED_BUFFER')
  // A getter on grads[1] transfers grads[0], and allocates over the freed memory.
  gs = fresh()
  const g0 = gs[0]
  const tricky: Float32Array[] = [g0]
  Object.defineProperty(tricky, 1, { get: () => (transfer(g0), new Float32Array(1000).fill(3)), enumerable: true })
  t.is(codeOf(() => agg.aggregate(tricky)), 'ERR_DETACHED_BUFFER')
  // The same through aggregateAsync (which copies the inputs before returning).
  gs = fresh()
  const g1 = gs[0]
  const trickyAsync: Float32Array[] = [g1]
  Object.defineProperty(trickyAsync, 1, { get: () => (transfer(g1), new Float32Array(1000)), enumerable: true })
  await t.throwsAsync(agg.aggregateAsync(trickyAsync), { code: 'ERR_DETACHED_BUFFER' })
  // A getter on weights transfers `out`.
  gs = fresh()
  const out = new Float32Array(1000)
  weights = [1]
  Object.defineProperty(weights, 1, { get: () => (transfer(out), 1), enumerable: true })
  t.is(codeOf(() => agg.aggregate(gs, { weights, out })), 'ERR_DETACHED_BUFFER')
  // Getters that do no harm are simply read.
  gs = fresh()
  weights = [1]
  Object.defineProperty(weights, 1, { get: () => 3, enumerable: true })
  t.deepEqual(Array.from(agg.aggregate(gs, { weights }).slice(0, 2)), [2.5, 2.5])
})

test('aggregate(grads, { out }) writes into out, equals the allocating form, and refuses overlap or a wrong length', async (t) => {
  const gs = Array.from({ length: 6 }, (_, i) => gaussian(70_000, 30 + i))
  const sp = new FederatedClient({ nodeId: 'c', compression: topK(0.99) }).compress(gs[0])
  const inputs = [...gs, sp]
  const w = [1, 2, 3, 4, 5, 6, 7]
  for (const strategy of [AggregationStrategy.FEDAVG, AggregationStrategy.MEDIAN, AggregationStrategy.FEDADAM]) {
    const out = new Float32Array(70_000).fill(123) // stale content must not leak into the result
    const r = new GradientAggregator({ strategy }).aggregate(inputs, { weights: w, out })
    t.is(r, out)
    assertClose(t, out, new GradientAggregator({ strategy }).aggregate(inputs, { weights: w }), 0, strategy)
  }
  const sparseOnly = new Float32Array(70_000).fill(-5)
  new GradientAggregator().aggregate([sp, sp], { out: sparseOnly })
  assertClose(t, sparseOnly, sp.decompress(), 0)
  const agg = new GradientAggregator()
  t.is(codeOf(() => agg.aggregate(gs, { out: gs[2] })), 'ERR_INVALID_ARG')
  t.is(codeOf(() => agg.aggregate(gs, { out: gs[2].subarray(5) })), 'ERR_LENGTH_MISMATCH')
  const shared = new Float32Array(140_000)
  shared.set(gs[0])
  const view = shared.subarray(0, 70_000)
  t.is(codeOf(() => agg.aggregate([view, gs[1]], { out: shared.subarray(35_000, 105_000) })), 'ERR_INVALID_ARG')
  t.notThrows(() => agg.aggregate([view, gs[1]], { out: shared.subarray(70_000) }))
  // Async forms never throw: bad input rejects.
  await t.throwsAsync(agg.aggregateAsync(gs, { out: new Float32Array(70_000) }), { code: 'ERR_INVALID_ARG' })
})

// ---- Async -------------------------------------------------------------------------------

test('aggregateAsync equals aggregate, snapshots its inputs, and marks the aggregator busy', async (t) => {
  const gs = Array.from({ length: 8 }, (_, i) => gaussian(300_000, 800 + i))
  const c = new FederatedClient({ nodeId: 'c', compression: topK(0.99) }).compress(gs[0])
  const inputs = [...gs, c]
  const expected = new GradientAggregator().aggregate(inputs, { weights: [1, 2, 3, 4, 5, 6, 7, 8, 9] })
  const agg = new GradientAggregator()
  const p = agg.aggregateAsync(inputs, { weights: [1, 2, 3, 4, 5, 6, 7, 8, 9] })
  for (const g of gs) g.fill(1e6) // changes after the call must not be seen
  t.is(codeOf(() => agg.add('x', gs[0])), 'ERR_BUSY')
  const out = await p
  t.notThrows(() => agg.add('x', gs[1])) // busy ends when the Promise settles
  t.deepEqual(Array.from(out.subarray(0, 1000)), Array.from(expected.subarray(0, 1000)))
  assertClose(t, out, expected, 0)
  await t.throwsAsync(() => new GradientAggregator().aggregateAsync([gs[0], new Float32Array(3)]), { code: 'ERR_LENGTH_MISMATCH' } as any)
  const e = await t.throwsAsync(() => new GradientAggregator().aggregateAsync([]))
  t.is((e as any).code, 'ERR_NO_CLIENTS')
})

// ---- Sparse result (aggregateSparse) ----------------------------------------------------

/** Bit patterns, so that -0 / NaN payloads would show and equality is exact. */
const bitsOf = (a: Float32Array) => new Uint32Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength))

/** Exact equality of two arrays, reporting the first difference (cheaper than deepEqual on large arrays). */
function sameArray(t: any, a: ArrayLike<number>, b: ArrayLike<number>, what = '') {
  t.is(a.length, b.length, `${what} length`)
  let k = 0
  while (k < a.length && a[k] === b[k]) k++
  t.is(k, a.length, `${what}: first difference at ${k}: ${a[k]} vs ${b[k]}`)
}

/**
 * The weighted mean of sparse inputs as the package defines it, in a plain loop: weights
 * relative to the largest (times the staleness factor), normalised in f64, rounded to f32,
 * then each position summed in f32 in list order from 0.
 */
function refSparseMean(gs: CompressedGradient[], raw: number[]): { dense: Float32Array; indices: number[] } {
  const top = Math.max(...raw)
  const eff = raw.map((x) => x / top)
  const total = eff.reduce((a, b) => a + b, 0)
  const out = new Float32Array(gs[0].length)
  const touched = new Set<number>()
  gs.forEach((g, i) => {
    const w = Math.fround(eff[i] / total)
    if (w === 0) return
    const idx = g.indices
    const val = g.values
    for (let k = 0; k < idx.length; k++) {
      out[idx[k]] = Math.fround(out[idx[k]] + Math.fround(w * val[k]))
      touched.add(idx[k])
    }
  })
  return { dense: out, indices: [...touched].sort((a, b) => a - b) }
}

const compressWith = (g: Float32Array, compression: CompressionConfig) =>
  new FederatedClient({ nodeId: 'c', compression }).compress(g)

test('aggregateSparse equals a plain-JS loop and aggregate bit for bit (FEDAVG, WEIGHTED_AVG, ASYNC_FEDAVG)', (t) => {
  const r = rng(71)
  const configs = [
    topK(0.9),
    topK(0.99),
    new CompressionConfig({ compressionType: CompressionType.RANDOM_K, sparsity: 0.95, errorFeedback: false, seed: 3 }),
    new CompressionConfig({ compressionType: CompressionType.TOP_K_QUANTIZED, sparsity: 0.9, errorFeedback: false }),
  ]
  // Lengths below, at and across the 16 Ki chunk, not multiples of it, and one large enough
  // for the parallel path.
  const lengths = [1, 7, 16_383, 16_384, 16_385, 50_001, 400_003]
  let trial = 0
  for (const n of lengths) {
    for (let rep = 0; rep < 3; rep++, trial++) {
      const m = 1 + Math.floor(r() * 6)
      const gs: CompressedGradient[] = []
      for (let i = 0; i < m; i++) {
        const g = gaussian(n, 5000 + trial * 10 + i)
        if (i > 0 && r() < 0.3) {
          // Top-k of this: the previous input's positions, if it kept as many (heavy overlap).
          for (const j of gs[i - 1].indices) g[j] += 100
          gs.push(compressWith(g, configs[0]))
        } else {
          gs.push(compressWith(g, configs[Math.floor(r() * configs.length)]))
        }
      }
      const inputs = gs.map((g) => (r() < 0.3 ? g.toBuffer() : g))
      const w = Array.from({ length: m }, (_, i) => (i > 0 && r() < 0.25 ? 0 : 0.1 + r() * 10))
      const stale = Array.from({ length: m }, () => Math.floor(r() * 4))
      for (const strategy of [AggregationStrategy.FEDAVG, AggregationStrategy.WEIGHTED_AVG, AggregationStrategy.ASYNC_FEDAVG]) {
        const opts = strategy === AggregationStrategy.ASYNC_FEDAVG ? { weights: w, staleness: stale } : { weights: w }
        const raw = strategy === AggregationStrategy.ASYNC_FEDAVG ? w.map((x, i) => x * (1 + stale[i]) ** -0.5) : w
        const agg = new GradientAggregator({ strategy })
        const res = agg.aggregateSparse(inputs, opts)
        const what = `n ${n} m ${m} ${strategy}`
        t.true(res instanceof CompressedGradient, what)
        t.is(res.length, n, what)
        t.is(res.compressionType, CompressionType.TOP_K, what)
        t.false(res.isDense, what)
        t.is(res.round, 0, what)
        t.is(agg.round, 1, what)
        const ref = refSparseMean(gs, raw)
        sameArray(t, res.indices, ref.indices, `${what} indices`)
        const got = bitsOf(res.decompress())
        sameArray(t, got, bitsOf(ref.dense), `${what} vs JS`)
        sameArray(t, got, bitsOf(new GradientAggregator({ strategy }).aggregate(inputs, opts)), `${what} vs aggregate`)
        // It travels: the wire round trip gives it back.
        const back = CompressedGradient.fromBuffer(res.toBuffer())
        sameArray(t, back.indices, res.indices, `${what} wire indices`)
        sameArray(t, bitsOf(back.values), bitsOf(res.values), `${what} wire values`)
      }
    }
  }
})

test('aggregateSparse keeps entries whose sum is exactly 0, clips like aggregate, and reuses { out }', (t) => {
  const g = gaussian(20_000, 9)
  const a = compressWith(g, topK(0.99))
  const b = compressWith(g.map((x) => -x), topK(0.99)) // the same positions, negated values
  const zero = new GradientAggregator().aggregateSparse([a, b])
  t.deepEqual(Array.from(zero.indices), Array.from(a.indices))
  t.true(zero.values.every((v) => Object.is(v, 0)))
  t.notThrows(() => CompressedGradient.fromBuffer(zero.toBuffer()))
  // clipNorm: the same clip factors as aggregate.
  const gs = Array.from({ length: 5 }, (_, i) => compressWith(gaussian(30_000, 90 + i), topK(0.95)))
  const clip = { strategy: AggregationStrategy.FEDAVG, clipNorm: 2 }
  const agg = new GradientAggregator(clip)
  t.deepEqual(bitsOf(agg.aggregateSparse(gs, { weights: [1, 2, 3, 4, 5] }).decompress()), bitsOf(new GradientAggregator(clip).aggregate(gs, { weights: [1, 2, 3, 4, 5] })))
  t.true(agg.stats.lastClipped > 0)
  // { out }: overwritten and returned, equal to the fresh result, whatever it held before.
  const out = compressWith(gaussian(500, 1), new CompressionConfig({ compressionType: CompressionType.TOP_K_QUANTIZED, sparsity: 0.5 }))
  const fresh = new GradientAggregator().aggregateSparse(gs, { weights: [5, 4, 3, 2, 1] })
  const r = new GradientAggregator().aggregateSparse(gs, { weights: [5, 4, 3, 2, 1], out })
  t.is(r, out)
  t.is(out.length, 30_000)
  t.is(out.compressionType, CompressionType.TOP_K)
  t.deepEqual(Array.from(out.indices), Array.from(fresh.indices))
  t.deepEqual(bitsOf(out.values), bitsOf(fresh.values))
  t.deepEqual(out.toBuffer(), fresh.toBuffer())
  // Again into the same object (its buffers are reused), and refusals.
  t.is(new GradientAggregator().aggregateSparse(gs.slice(0, 2), { out }), out)
  t.deepEqual(out.toBuffer(), new GradientAggregator().aggregateSparse(gs.slice(0, 2)).toBuffer())
  let e = t.throws(() => new GradientAggregator().aggregateSparse([gs[0], out, gs[1]], { out }))
  t.is((e as any).code, 'ERR_INVALID_ARG')
  t.regex(e!.message, /out is grads\[1\]/)
  t.is(codeOf(() => new GradientAggregator().aggregateSparse(gs, { out: new Float32Array(30_000) as any })), 'ERR_INVALID_ARG')
  e = t.throws(() => new GradientAggregator().aggregateSparse(gs, { weights: [1], out }))
  t.is((e as any).code, 'ERR_LENGTH_MISMATCH')
  t.deepEqual(out.toBuffer(), new GradientAggregator().aggregateSparse(gs.slice(0, 2)).toBuffer()) // unchanged
})

test('aggregateSparse refuses bad input with the same coded errors as aggregate, and the dense forms', (t) => {
  const gs = [0, 1, 2].map((i) => compressWith(gaussian(1000, 40 + i), topK(0.9)))
  const agg = new GradientAggregator()
  t.is(codeOf(() => agg.aggregateSparse([])), 'ERR_NO_CLIENTS')
  let e = t.throws(() => agg.aggregateSparse([gs[0], gs[1], compressWith(gaussian(999, 1), topK(0.9))]))
  t.is((e as any).code, 'ERR_LENGTH_MISMATCH')
  t.regex(e!.message, /grads\[2\] has length 999 but grads\[0\] has length 1000/)
  e = t.throws(() => agg.aggregateSparse(gs, { weights: [1, 2] }))
  t.is((e as any).code, 'ERR_LENGTH_MISMATCH')
  t.regex(e!.message, /weights has 2 entries but grads has 3/)
  e = t.throws(() => agg.aggregateSparse(gs, { weights: [1, -2, 1] }))
  t.is((e as any).code, 'ERR_INVALID_WEIGHT')
  t.regex(e!.message, /weights\[1\] is -2/)
  t.is(codeOf(() => agg.aggregateSparse(gs, { weights: [0, 0, 0] })), 'ERR_ZERO_TOTAL_WEIGHT')
  t.is(codeOf(() => agg.aggregateSparse(gs, { staleness: [0, 0, 0] })), 'ERR_INVALID_ARG')
  t.is(codeOf(() => agg.aggregateSparse(gs, { weights: 'x' as any })), 'ERR_INVALID_ARG')
  t.is(codeOf(() => agg.aggregateSparse('nope' as any)), 'ERR_INVALID_ARG')
  t.is(codeOf(() => agg.aggregateSparse([gs[0], Buffer.from('garbage!')])), 'ERR_CORRUPT_DATA')
  // Dense inputs: a Float32Array, or a CompressedGradient that carries every position.
  e = t.throws(() => agg.aggregateSparse([gs[0], gaussian(1000, 3) as any]))
  t.is((e as any).code, 'ERR_INVALID_ARG')
  t.regex(e!.message, /grads\[1\] is a dense array/)
  const q = compressWith(gaussian(1000, 4), new CompressionConfig({ compressionType: CompressionType.QUANTIZATION, sparsity: 0 }))
  e = t.throws(() => agg.aggregateSparse([q, gs[0]]))
  t.is((e as any).code, 'ERR_INVALID_ARG')
  t.regex(e!.message, /grads\[0\] is a dense CompressedGradient \(quantization\)/)
  // Strategies whose result is not a weighted mean, and noise.
  for (const strategy of [
    AggregationStrategy.MEDIAN,
    AggregationStrategy.TRIMMED_MEAN,
    AggregationStrategy.KRUM,
    AggregationStrategy.MULTI_KRUM,
    AggregationStrategy.FEDAVGM,
    AggregationStrategy.FEDADAM,
    AggregationStrategy.FEDYOGI,
  ]) {
    e = t.throws(() => new GradientAggregator({ strategy }).aggregateSparse(gs))
    t.is((e as any).code, 'ERR_INVALID_ARG', strategy)
    t.regex(e!.message, new RegExp(`${strategy} needs the dense form`), strategy)
  }
  t.is(codeOf(() => new GradientAggregator({ clipNorm: 1, noiseMultiplier: 1 }).aggregateSparse(gs)), 'ERR_INVALID_ARG')
  // A weighted sum that overflows f32 (ten f32 maxima at one position, weights 0.1 rounded up).
  const big = compressWith(Float32Array.of(3.4028234663852886e38, 0, 0, 0), topK(0.75))
  e = t.throws(() => agg.aggregateSparse(new Array(10).fill(big)))
  t.is((e as any).code, 'ERR_NON_FINITE')
  t.regex(e!.message, /overflowed f32 at index 0/)
  t.is(codeOf(() => agg.aggregate(new Array(10).fill(big))), 'ERR_NON_FINITE')
  t.is(agg.round, 0) // nothing counted for refused calls
  // Into { out }: out holds the overflowed sum (documented), which cannot be sent: toBuffer()
  // refuses it rather than write bytes that fromBuffer would reject.
  const out = agg.aggregateSparse([big])
  t.is(codeOf(() => agg.aggregateSparse(new Array(10).fill(big), { out })), 'ERR_NON_FINITE')
  t.is(out.decompress()[0], Infinity)
  e = t.throws(() => out.toBuffer())
  t.is((e as any).code, 'ERR_NON_FINITE')
  t.regex(e!.message, /CompressedGradient\[0\] is inf/)
})

test('aggregateSparseAsync equals aggregateSparse, snapshots its inputs, and marks the aggregator busy', async (t) => {
  const gs = Array.from({ length: 8 }, (_, i) => compressWith(gaussian(300_000, 900 + i), topK(0.98)))
  const w = [1, 2, 3, 4, 5, 6, 7, 8]
  const expected = new GradientAggregator().aggregateSparse(gs, { weights: w })
  const agg = new GradientAggregator()
  const bytes = gs[3].toBuffer()
  const inputs = [...gs.slice(0, 3), bytes, ...gs.slice(4)]
  const p = agg.aggregateSparseAsync(inputs, { weights: w })
  bytes.fill(0) // changes after the call must not be seen
  t.is(codeOf(() => agg.aggregateSparse(gs)), 'ERR_BUSY')
  const res = await p
  t.true(res instanceof CompressedGradient)
  t.deepEqual(res.toBuffer(), expected.toBuffer())
  t.is(agg.round, 1)
  t.notThrows(() => agg.aggregateSparse(gs)) // busy ends when the Promise settles
  await t.throwsAsync(() => new GradientAggregator().aggregateSparseAsync([gs[0], compressWith(gaussian(3, 1), topK(0.5))]), { code: 'ERR_LENGTH_MISMATCH' } as any)
  await t.throwsAsync(() => new GradientAggregator({ strategy: AggregationStrategy.MEDIAN }).aggregateSparseAsync(gs), { code: 'ERR_INVALID_ARG' } as any)
  await t.throwsAsync(new GradientAggregator().aggregateSparseAsync(gs, { out: expected }), { code: 'ERR_INVALID_ARG' })
})

/** CRC32C (Castagnoli), bitwise: to forge a message the way an attacker could. */
function crc32c(bytes: Uint8Array): number {
  let c = ~0 >>> 0
  for (const b of bytes) {
    c ^= b
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1
  }
  return ~c >>> 0
}

test('extreme values: huge weights, huge norms, overflowing noise and weight × samples never give a wrong or non-finite model', (t) => {
  // Only the ratio of weights matters: 1e308 + 1e308 overflows f64, the average must not.
  const avg = new GradientAggregator({ strategy: AggregationStrategy.WEIGHTED_AVG })
  t.deepEqual(Array.from(avg.aggregate([Float32Array.of(1, 2), Float32Array.of(3, 4)], { weights: [1e308, 1e308] })), [2, 3])
  // ‖(3e38, 3e38)‖ overflows f32 squares; clipped to norm 1 it is (1/√2, 1/√2).
  const clipped = new GradientAggregator({ strategy: AggregationStrategy.FEDAVG, clipNorm: 1 }).aggregate([Float32Array.of(3e38, 3e38)])
  t.true(Math.abs(clipped[0] - Math.SQRT1_2) < 1e-6 && Math.abs(clipped[1] - Math.SQRT1_2) < 1e-6, String(clipped))
  const noisy = new GradientAggregator({ strategy: AggregationStrategy.FEDAVG, clipNorm: 1e300, noiseMultiplier: 1e10 })
  t.is(t.throws<NodeJS.ErrnoException>(() => noisy.aggregate([Float32Array.of(1, 2)]))!.code, 'ERR_NON_FINITE')
  const s = new GradientAggregator({ strategy: AggregationStrategy.FEDAVG })
  const e = t.throws<NodeJS.ErrnoException>(() => s.add('a', Float32Array.of(1), { weight: 1e200, samples: 1e200 }))!
  t.is(e.code, 'ERR_INVALID_WEIGHT')
  t.regex(e.message, /"a"/)
})

test('modelSize: a forged header claiming a huge length is refused before anything of its size is allocated', (t) => {
  const client = new FederatedClient({ nodeId: 'x', compression: new CompressionConfig({ compressionType: CompressionType.TOP_K, sparsity: 0.9, errorFeedback: false }) })
  const wire = Buffer.from(client.compress(Float32Array.from({ length: 10 }, (_, i) => i + 1)).toBuffer())
  wire.writeUInt32LE(2 ** 30, 12) // claims 2^30 values (4 GB dense)
  wire.writeUInt32LE(crc32c(wire.subarray(0, wire.length - 4)), wire.length - 4)
  t.is(CompressedGradient.fromBuffer(wire).length, 2 ** 30) // a valid message as far as the format goes
  const agg = new GradientAggregator({ strategy: AggregationStrategy.FEDAVG, modelSize: 10 })
  const before = process.memoryUsage().rss
  const err = t.throws<NodeJS.ErrnoException>(() => agg.add('x', wire))!
  t.is(err.code, 'ERR_LENGTH_MISMATCH')
  t.is(t.throws<NodeJS.ErrnoException>(() => agg.aggregate([wire]))!.code, 'ERR_LENGTH_MISMATCH')
  t.true(process.memoryUsage().rss - before < 100e6)
  t.is(t.throws<NodeJS.ErrnoException>(() => new GradientAggregator({ modelSize: 0 }))!.code, 'ERR_INVALID_ARG')
  t.is(t.throws<NodeJS.ErrnoException>(() => new GradientAggregator({ modelSize: 3, globalModel: Float32Array.of(1, 2) }))!.code, 'ERR_LENGTH_MISMATCH')
})

test('applyUpdate refuses non-finite inputs and an overflowing step', (t) => {
  const c = new FederatedClient({ nodeId: 'x' })
  t.deepEqual(Array.from(c.applyUpdate(Float32Array.of(1, 2), Float32Array.of(10, -10), 0.5)), [-4, 7])
  t.is(t.throws<NodeJS.ErrnoException>(() => c.applyUpdate([NaN, 2], [1, 2]))!.code, 'ERR_NON_FINITE')
  t.is(t.throws<NodeJS.ErrnoException>(() => c.applyUpdate([3e38], [-3e38], 10))!.code, 'ERR_NON_FINITE')
  // A getter in the update array that transfers params: seen as detached, never read after free.
  const params = new Float32Array(1000).fill(1)
  const update: number[] = new Array(1000).fill(1)
  Object.defineProperty(update, 1, { get: () => (structuredClone(params.buffer, { transfer: [params.buffer] }), 1), enumerable: true })
  t.is(t.throws<NodeJS.ErrnoException>(() => c.applyUpdate(params, update))!.code, 'ERR_DETACHED_BUFFER')
})

test('server optimisers refuse an aggregate too large for their moments, and keep their state', (t) => {
  for (const strategy of [AggregationStrategy.FEDADAM, AggregationStrategy.FEDYOGI, AggregationStrategy.FEDAVGM]) {
    const agg = new GradientAggregator({ strategy })
    const first = agg.aggregate([Float32Array.of(1, 2)])
    t.is(t.throws<NodeJS.ErrnoException>(() => agg.aggregate([Float32Array.of(3e38, 1)]))!.code, 'ERR_NON_FINITE', strategy)
    // The failed round changed nothing: a fresh optimiser fed the same two good rounds agrees.
    const second = agg.aggregate([Float32Array.of(1, 2)])
    const ref = new GradientAggregator({ strategy })
    ref.aggregate([Float32Array.of(1, 2)])
    t.deepEqual(Array.from(second), Array.from(ref.aggregate([Float32Array.of(1, 2)])), strategy)
    t.true(first.every(Number.isFinite))
  }
})

// Results are engine-owned arrays, which the GC frees by itself; arrays handed over from
// Rust were freed only after the event loop turned, so a synchronous loop piled them up
// (40 results of 16 MB grew the process by ≈ 640 MB). Run in a child process so that
// other tests' memory does not count.
test('results made in a synchronous loop are freed without waiting for the event loop', (t) => {
  const script = `
    const { GradientAggregator, AggregationStrategy, FederatedClient, CompressionConfig, CompressionType } = require('./index.js')
    const n = 4_000_000
    const a = new Float32Array(n).fill(1), b = new Float32Array(n).fill(2), c = new Float32Array(n).fill(9)
    const agg = new GradientAggregator({ strategy: AggregationStrategy.FEDAVG })
    const median = new GradientAggregator({ strategy: AggregationStrategy.MEDIAN })
    const server = new GradientAggregator({ strategy: AggregationStrategy.FEDAVGM, globalModel: a })
    const g = new Float32Array(n); g[7] = 4
    const compression = new CompressionConfig({ compressionType: CompressionType.NONE, errorFeedback: false })
    const dense = new FederatedClient({ nodeId: 'x', compression }).compress(g)
    const sparse = new FederatedClient({ nodeId: 'x', compression: new CompressionConfig({ compressionType: CompressionType.TOP_K, sparsity: 0.99, errorFeedback: false }) }).compress(g)
    const rss = () => process.memoryUsage().rss
    const grown = {}
    let s = 0
    const loop = (name, f) => {
      s += f() // warm-up
      const r0 = rss()
      for (let i = 0; i < 40; i++) s += f()
      grown[name] = (rss() - r0) / 1e6
    }
    loop('aggregate', () => agg.aggregate([a, b])[0]) // 1.5
    loop('decompress', () => sparse.decompress()[7]) // 4
    loop('median', () => median.aggregate([a, b, c])[0]) // 2
    loop('finish', () => { agg.add('p', a); agg.add('q', b); return agg.finish()[1] }) // 1.5
    loop('globalModel', () => server.globalModel[2]) // 1
    loop('values', () => dense.values[7]) // 4
    loop('indices', () => dense.indices[7]) // 7
    loop('toBuffer', () => (dense.toBuffer().length > 4 * n ? 1 : 0)) // 1
    const feedback = new FederatedClient({ nodeId: 'f', compression: new CompressionConfig({ compressionType: CompressionType.TOP_K, sparsity: 0.99 }) })
    feedback.compress(a)
    loop('saveState', () => (feedback.saveState().length > 4 * n ? 1 : 0)) // 1
    const pending = new GradientAggregator({ strategy: AggregationStrategy.FEDAVG })
    pending.add('p', a)
    loop('partial toBuffer', () => (pending.toBuffer().length > 4 * n ? 1 : 0)) // 1
    console.log(JSON.stringify({ grown, s }))
  `
  const r = spawnSync(process.execPath, ['-e', script], { cwd: new URL('..', import.meta.url), encoding: 'utf8' })
  t.is(r.status, 0, r.stderr)
  const { grown, s } = JSON.parse(r.stdout)
  t.is(s, 41 * (1.5 + 4 + 2 + 1.5 + 1 + 4 + 7 + 1 + 1 + 1))
  // 40 × 16 MB = 640 MB made per loop; a freed-as-you-go loop stays far below half of it.
  for (const [name, mb] of Object.entries(grown)) t.true((mb as number) < 320, `${name} grew the process by ${mb} MB`)
})

/** Runs `script` in a child Node limited to 3 GB of address space (enough for Node, not for
 *  the allocations under test) and returns the JSON it prints; the child must exit normally. */
function underMemoryLimit(t: ExecutionContext, script: string): unknown {
  const r = spawnSync('bash', ['-c', `ulimit -v 3000000 && exec "${process.execPath}" -e "$0"`, script], {
    cwd: new URL('..', import.meta.url),
    encoding: 'utf8',
  })
  t.is(r.status, 0, r.stderr)
  return JSON.parse(r.stdout)
}

// V8 ends the process when it cannot allocate an ArrayBuffer (a FATAL error, not an
// exception). A forged but well-formed message can declare 2^32 − 1 values: under an
// address-space limit, decompress() must refuse with a code and the process go on.
test('a result the process cannot allocate is ERR_OUT_OF_MEMORY, not a crash', (t) => {
  const script = `
    const { FederatedClient, CompressionConfig, CompressionType, CompressedGradient, GradientAggregator } = require('./index.js')
    ${crc32c.toString()}
    const reseal = (b) => { b.writeUInt32LE(crc32c(b.subarray(0, b.length - 4)), b.length - 4); return b }
    const compression = new CompressionConfig({ compressionType: CompressionType.TOP_K, sparsity: 0.99, errorFeedback: false })
    const client = new FederatedClient({ nodeId: 'x', compression })
    // Well-formed top-k messages of one entry whose declared length is 2^32 − 1.
    const forged = [1, 2, 3, 4, 5].map((v) => {
      const g = new Float32Array(100); g[v] = v
      const b = Buffer.from(client.compress(g).toBuffer())
      b.writeUInt32LE(2 ** 32 - 1, 12)
      return reseal(b)
    })
    const codes = {}
    const run = (name, f) => { try { f(); codes[name] = 'no error' } catch (e) { codes[name] = e.code } }
    run('decompress', () => CompressedGradient.fromBuffer(forged[0]).decompress())
    run('fedavg aggregate', () => new GradientAggregator().aggregate(forged))
    run('fedavg add', () => new GradientAggregator().add('a', forged[0]))
    run('median aggregate', () => new GradientAggregator({ strategy: 'median' }).aggregate(forged))
    run('krum finish', () => { const a = new GradientAggregator({ strategy: 'krum' }); forged.forEach((b, i) => a.add('s' + i, b)); a.finish() })
    run('modelSize add', () => new GradientAggregator({ modelSize: 100 }).add('a', forged[0]))
    // A partial round from another process, its length patched the same way.
    const leader = new GradientAggregator({ strategy: 'median' })
    for (let j = 0; j < 5; j++) { const g = new Float32Array(100); g[j] = j + 1; leader.add('sat' + j, client.compress(g)) }
    const partial = Buffer.from(leader.toBuffer()); partial.writeBigUInt64LE(2n ** 32n - 1n, 16); reseal(partial)
    run('merged finish', () => { const g = new GradientAggregator({ strategy: 'median' }); g.merge(partial); g.finish() })
    // 1-bit quantized values expand 32× on decoding: 100 MB declaring 800,000,000 values.
    const N = 800_000_000, scales = Math.ceil(N / 1024), V = scales * 4 + N / 8
    const q = Buffer.alloc(36 + V)
    q.write('RSGD', 0, 'latin1'); q[4] = 1; q[5] = 3; q[6] = 2; q[7] = 1
    q.writeUInt32LE(N, 12); q.writeUInt32LE(N, 16); q.writeUInt32LE(V, 28)
    for (let i = 0; i < scales; i++) q.writeFloatLE(1, 32 + 4 * i)
    q.fill(0x55, 32 + 4 * scales, 32 + V)
    reseal(q)
    run('quantized fromBuffer', () => CompressedGradient.fromBuffer(q))
    // 400 M values: the running sum fits, a second copy for toBuffer() does not.
    const big = Buffer.from(forged[0]); big.writeUInt32LE(400_000_000, 12); reseal(big)
    run('partial toBuffer', () => { const a = new GradientAggregator(); a.add('a', big); a.toBuffer() })
    run('quantized modelSize add', () => new GradientAggregator({ modelSize: 1000 }).add('a', q))
    new GradientAggregator({ strategy: 'median' }).aggregateAsync(forged).then(
      () => { codes['median aggregateAsync'] = 'no error' },
      (e) => { codes['median aggregateAsync'] = e.code },
    ).then(() => console.log(JSON.stringify(codes)))
  `
  t.deepEqual(underMemoryLimit(t, script), {
    decompress: 'ERR_OUT_OF_MEMORY',
    'fedavg aggregate': 'ERR_OUT_OF_MEMORY',
    'fedavg add': 'ERR_OUT_OF_MEMORY',
    'median aggregate': 'ERR_OUT_OF_MEMORY',
    'krum finish': 'ERR_OUT_OF_MEMORY',
    'modelSize add': 'ERR_LENGTH_MISMATCH',
    'merged finish': 'ERR_OUT_OF_MEMORY',
    'quantized fromBuffer': 'ERR_OUT_OF_MEMORY',
    'quantized modelSize add': 'ERR_LENGTH_MISMATCH',
    'partial toBuffer': 'ERR_OUT_OF_MEMORY',
    'median aggregateAsync': 'ERR_OUT_OF_MEMORY',
  })
})

test('a native copy of a caller\'s array that the process cannot hold is ERR_OUT_OF_MEMORY, not a crash', (t) => {
  const script = `
    const { FederatedClient, CompressionConfig, CompressionType, GradientAggregator } = require('./index.js')
    // A caller's own 1.8 GB array (untouched pages): copying it natively does not fit.
    const huge = new Float32Array(450_000_000)
    const codes = {}
    const run = (name, f) => { try { f(); codes[name] = 'no error' } catch (e) { codes[name] = e.code } }
    run('median add', () => new GradientAggregator({ strategy: 'median' }).add('a', huge))
    run('error-feedback residual', () => new FederatedClient({ nodeId: 'e', compression: new CompressionConfig({ compressionType: CompressionType.TOP_K, sparsity: 0.99 }) }).compress(huge))
    new GradientAggregator().aggregateAsync([huge]).then(
      () => { codes.aggregateAsync = 'no error' },
      (e) => { codes.aggregateAsync = e.code },
    ).then(() => console.log(JSON.stringify(codes)))
  `
  t.deepEqual(underMemoryLimit(t, script), {
    'median add': 'ERR_OUT_OF_MEMORY',
    'error-feedback residual': 'ERR_OUT_OF_MEMORY',
    aggregateAsync: 'ERR_OUT_OF_MEMORY',
  })
})
