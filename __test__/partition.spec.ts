import test from 'ava'
import {
  LatencyEstimator,
  ModelProfile,
  NodeConfig,
  NodeType,
  PartitionObjective,
  PartitionOptimizer,
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

// The documented default links (docs/partition.md), [bandwidth Mbps, latency ms].
const K = ['satellite', 'relay', 'ground', 'edge'] as const
const LINKS: Record<string, [number, number]> = {}
const row = (from: string, vals: [number, number][]) => K.forEach((to, i) => (LINKS[`${from}>${to}`] = vals[i]))
row('satellite', [[1000, 3.3], [1000, 120], [200, 1.8], [200, 1.8]])
row('relay', [[1000, 120], [1000, 120], [600, 120], [600, 120]])
row('ground', [[100, 1.8], [300, 120], [10000, 5], [1000, 5]])
row('edge', [[100, 1.8], [300, 120], [1000, 5], [1000, 5]])
const space = (k: string) => k === 'satellite' || k === 'relay'

type L = { name: string; paramsMb: number; flops: number; activationMb: number }
type N = { nodeId: string; nodeType: NodeType; memoryGb: number; computeTflops: number }

/** Independent pricing of a placement (node index per layer): [latency, boundary MB, period] or null. */
function price(layers: L[], inputMb: number, nodes: N[], place: number[], input: number, outKind: string): [number, number, number] | null {
  const seen = new Set<number>()
  for (let i = 0; i < place.length; i++) {
    if (i > 0 && place[i] === place[i - 1]) continue
    if (seen.has(place[i])) return null
    seen.add(place[i])
  }
  for (let n = 0; n < nodes.length; n++) {
    let m = 0
    place.forEach((p, i) => p === n && (m += layers[i].paramsMb))
    if (m > nodes[n].memoryGb * 1000 * (1 + 1e-12)) return null
  }
  let lat = 0, bytes = 0, period = 0
  const hop = (from: string, to: string, mb: number) => {
    const [bw, l] = LINKS[`${from}>${to}`]
    const ser = mb === 0 ? 0 : (mb * 8000) / bw
    lat += l + ser
    period = Math.max(period, ser)
    if (space(from) !== space(to)) bytes += mb
  }
  let prev = input
  for (let i = 0; i < place.length; ) {
    const n = place[i]
    let flops = 0, j = i
    while (j < place.length && place[j] === n) flops += layers[j++].flops
    if (n !== prev) hop(nodes[prev].nodeType, nodes[n].nodeType, i === 0 ? inputMb : layers[i - 1].activationMb)
    const c = flops / (nodes[n].computeTflops * 1e9)
    lat += c
    period = Math.max(period, c)
    prev = n
    i = j
  }
  if (nodes[prev].nodeType !== outKind) hop(nodes[prev].nodeType, outKind, layers[layers.length - 1].activationMb)
  return [lat, bytes, period]
}

const close = (a: number, b: number) => Math.abs(a - b) <= 1e-9 * (1 + Math.max(Math.abs(a), Math.abs(b)))

function lexBest(costs: number[][]): number[] {
  let best = costs[0]
  for (const c of costs) {
    for (let t = 0; t < c.length; t++) {
      if (close(c[t], best[t])) continue
      if (c[t] < best[t]) best = c
      break
    }
  }
  return best
}
const keyOf = (c: [number, number, number], o: PartitionObjective) =>
  o === PartitionObjective.LATENCY ? [c[0], c[1]] : o === PartitionObjective.BOUNDARY_BYTES ? [c[1], c[0]] : [c[2], c[0], c[1]]

test('optimize equals a brute force over all placements, for each objective', (t) => {
  const r = rng(6)
  const opt = new PartitionOptimizer()
  const types = [NodeType.SATELLITE, NodeType.GROUND, NodeType.RELAY, NodeType.EDGE]
  let checked = 0
  for (let trial = 0; trial < 300; trial++) {
    const nl = 1 + Math.floor(r() * 5)
    const layers: L[] = Array.from({ length: nl }, (_, i) => ({
      name: `l${i}`,
      paramsMb: 1 + Math.floor(r() * 4),
      flops: Math.floor(r() * 5) * 1e9,
      activationMb: Math.floor(r() * 6),
    }))
    const inputMb = Math.floor(r() * 12)
    const nn = 1 + Math.floor(r() * 3)
    const nodes: N[] = Array.from({ length: nn }, (_, i) => ({
      nodeId: `n${i}`,
      nodeType: types[r() < 0.7 ? Math.floor(r() * 2) : Math.floor(r() * 4)],
      memoryGb: [0.004, 0.006, 0.01][Math.floor(r() * 3)],
      computeTflops: [1, 2, 4][Math.floor(r() * 3)],
    }))
    const input = Math.floor(r() * nn)
    const outKind = types[Math.floor(r() * 4)]
    const profile = new ModelProfile({ layers, inputMb })
    const options = { inputNode: nodes[input].nodeId, outputNodeType: outKind }
    const costs: [number, number, number][] = []
    const place = new Array(nl).fill(0)
    for (let c = 0; c < nn ** nl; c++) {
      let x = c
      for (let i = 0; i < nl; i++) (place[i] = x % nn), (x = Math.floor(x / nn))
      const p = price(layers, inputMb, nodes, place, input, outKind)
      if (p) costs.push(p)
    }
    for (const objective of [PartitionObjective.LATENCY, PartitionObjective.THROUGHPUT, PartitionObjective.BOUNDARY_BYTES]) {
      if (costs.length === 0) {
        t.throws(() => opt.optimize(profile, nodes, { ...options, objective }), { code: 'ERR_INFEASIBLE' })
        continue
      }
      const plan = opt.optimize(profile, nodes, { ...options, objective })
      const mine = price(layers, inputMb, nodes, layers.map((l) => nodes.findIndex((n) => n.nodeId === plan.assignments[l.name])), input, outKind)!
      t.truthy(mine)
      t.true(close(mine[0], plan.estimatedLatencyMs) && close(mine[1], plan.spaceGroundMb) && close(mine[2], plan.pipelinePeriodMs))
      const best = lexBest(costs.map((c) => keyOf(c, objective)))
      const got = keyOf(mine, objective)
      t.true(got.every((v, i) => close(v, best[i])), `trial ${trial} ${objective}: ${got} vs ${best}`)
      for (const s of plan.stages) t.true(s.memoryMb <= s.memoryCapacityMb * (1 + 1e-12))
      // evaluate() of the optimizer's assignments gives the same costs.
      const ev = opt.evaluate(profile, nodes, plan.assignments, options)
      t.is(ev.estimatedLatencyMs, plan.estimatedLatencyMs)
      t.is(ev.pipelinePeriodMs, plan.pipelinePeriodMs)
      t.is(ev.spaceGroundBytes, plan.spaceGroundBytes)
      t.deepEqual(ev.stages, plan.stages)
      checked++
    }
  }
  t.true(checked > 500, `${checked}`)
})

test('README example: a plan that reads well', (t) => {
  const profile = new ModelProfile({
    layers: [
      { name: 'embedding', paramsMb: 100, flops: 1e9 },
      { name: 'transformer_1', paramsMb: 200, flops: 5e9 },
      { name: 'transformer_2', paramsMb: 200, flops: 5e9 },
      { name: 'output', paramsMb: 50, flops: 1e8 },
    ],
  })
  const nodes = [
    new NodeConfig({ nodeId: 'sat-001', nodeType: NodeType.SATELLITE, memoryGb: 8, computeTflops: 2.0 }),
    new NodeConfig({ nodeId: 'sat-002', nodeType: NodeType.SATELLITE, memoryGb: 8, computeTflops: 2.0 }),
    new NodeConfig({ nodeId: 'ground-001', nodeType: NodeType.GROUND, memoryGb: 32, computeTflops: 10.0 }),
  ]
  const optimizer = new PartitionOptimizer()
  const plan = optimizer.optimize(profile, nodes)
  // Hand-worked: the 1 MB input goes down from sat-001 (1.8 + 8000/200 = 41.8 ms) and the
  // ground runs all 11.1 GFLOP at 10 TFLOPS (1.11 ms): 42.91 ms. Keeping it all on sat-001
  // costs 5.55 ms + 41.8 ms output down = 47.35 ms.
  t.is(
    JSON.stringify(plan.assignments),
    '{"embedding":"ground-001","transformer_1":"ground-001","transformer_2":"ground-001","output":"ground-001"}',
  )
  t.is(plan.estimatedLatencyMs.toFixed(1), '42.9')
  t.is(plan.stages[0].nodeId, 'ground-001')
  t.is(plan.stages[0].layers.length, 4)
  t.deepEqual(plan.idleNodes, ['sat-001', 'sat-002'])
  t.is(optimizer.evaluate(profile, nodes, { embedding: 'sat-001', transformer_1: 'sat-001', transformer_2: 'sat-001', output: 'sat-001' }).estimatedLatencyMs.toFixed(2), '47.35')
  const all = optimizer.compareObjectives(profile, nodes)
  t.deepEqual(Object.keys(all), ['latency', 'throughput', 'boundaryBytes'])
  t.is(all.boundaryBytes.spaceGroundMb, 1)
})

test('mission demo transformer profile', (t) => {
  const profile = ModelProfile.createTransformer({ name: 'onboard-llm', numLayers: 24, hiddenSize: 2048, vocabSize: 32000, sequenceLength: 512, bytesPerParam: 2 })
  t.is(profile.layers.length, 50)
  const params = 2 * 32000 * 2048 + 24 * 12 * 2048 * 2048
  t.true(Math.abs(profile.totalParamsMb - (params * 2) / 1e6) < 1e-6)
  t.is(profile.name, 'onboard-llm')
})

test('hand-worked split: the satellite encodes when the downlink is slow, not when it is fast', (t) => {
  const profile = new ModelProfile({
    inputMb: 100,
    layers: [
      { name: 'encoder', paramsMb: 50, flops: 2e9, activationMb: 1 },
      { name: 'head', paramsMb: 500, flops: 100e9, activationMb: 0.01 },
    ],
  })
  const nodes = [
    { nodeId: 'sat', nodeType: NodeType.SATELLITE, memoryGb: 8, computeTflops: 1 },
    { nodeId: 'gs', nodeType: NodeType.GROUND, memoryGb: 64, computeTflops: 100 },
  ]
  const opt = new PartitionOptimizer()
  const slow = opt.optimize(profile, nodes, { links: [{ from: NodeType.SATELLITE, to: NodeType.GROUND, bandwidthMbps: 200, latencyMs: 2 }] })
  // 2 ms encode + (2 + 1 MB·8000/200 = 42 ms) + 1 ms head = 45 ms; raw input down would be 4003.02 ms.
  t.deepEqual(slow.assignments, { encoder: 'sat', head: 'gs' })
  t.true(Math.abs(slow.estimatedLatencyMs - 45) < 1e-9)
  const fast = opt.optimize(profile, nodes, { links: [{ from: NodeType.SATELLITE, to: NodeType.GROUND, bandwidthMbps: 1e6, latencyMs: 2 }] })
  // 2 + 0.8 ms down + 0.02 + 1 ms on the ground = 3.82 ms.
  t.deepEqual(fast.assignments, { encoder: 'gs', head: 'gs' })
  t.true(Math.abs(fast.estimatedLatencyMs - 3.82) < 1e-9)
  // A per-node-pair link wins over the kind table.
  const pair = opt.optimize(profile, nodes, { nodeLinks: [{ from: 'sat', to: 'gs', bandwidthMbps: 1e6, latencyMs: 2 }] })
  t.deepEqual(pair.assignments, { encoder: 'gs', head: 'gs' })
})

test('CASES 19: balanced pipelines, idle nodes, tight memory, 0-bandwidth links', (t) => {
  const opt = new PartitionOptimizer({ objective: PartitionObjective.THROUGHPUT, outputNodeType: NodeType.SATELLITE })
  const sats = (n: number) => Array.from({ length: n }, (_, i) => ({ nodeId: `s${i}`, nodeType: NodeType.SATELLITE, memoryGb: 1, computeTflops: 1 }))
  const prof = (c: number[]) => new ModelProfile({ inputMb: 0, layers: c.map((f, i) => ({ name: `l${i}`, paramsMb: 1, flops: f * 1e9, activationMb: 0 })) })
  for (const [c, n] of [[[1, 1, 1, 1, 1], 4], [[1, 1, 1, 1, 0, 1], 4], [[1, 2, 1], 4], [[1, 1, 1, 1], 4]] as [number[], number][]) {
    const plan = opt.optimize(prof(c), sats(n))
    const loads = plan.stages.map((s) => s.layers.reduce((a, name) => a + c[Number(name.slice(1))], 0))
    t.true(plan.stages.every((s) => s.layers.length > 0))
    t.true(Math.max(...loads) - Math.min(...loads) <= 1, `${c}: ${loads}`)
  }
  const idle = opt.optimize(prof([1, 1, 1]), sats(4))
  t.is(idle.stages.length, 3)
  t.is(idle.idleNodes.length, 1)
  const e = t.throws(() => opt.optimize(new ModelProfile({ layers: [{ name: 'big', paramsMb: 2000, flops: 1 }] }), sats(2)), { code: 'ERR_INFEASIBLE' })
  t.regex(e!.message, /'big'/)
  // 0 bandwidth everywhere: a model needing two nodes is infeasible (not Infinity).
  const zero = [NodeType.SATELLITE, NodeType.GROUND].flatMap((a) => [NodeType.SATELLITE, NodeType.GROUND].map((b) => ({ from: a, to: b, bandwidthMbps: 0, latencyMs: 0 })))
  const two = new ModelProfile({ layers: [{ name: 'a', paramsMb: 800, flops: 1 }, { name: 'b', paramsMb: 800, flops: 1 }] })
  t.throws(() => opt.optimize(two, sats(2), { links: zero }), { code: 'ERR_INFEASIBLE' })
  // One usable ISL direction: it is used, the 0-bandwidth one never.
  const plan = opt.optimize(two, sats(2), { links: zero, nodeLinks: [{ from: 's1', to: 's0', bandwidthMbps: 100, latencyMs: 1 }], inputNode: 's1' })
  t.deepEqual(plan.assignments, { a: 's1', b: 's0' })
  t.true(Number.isFinite(plan.estimatedLatencyMs))
})

test('evaluate refuses memory breaches and non-contiguous placements, naming which', (t) => {
  const opt = new PartitionOptimizer()
  const profile = new ModelProfile({ layers: [0, 1, 2].map((i) => ({ name: `l${i}`, paramsMb: 600, flops: 1e9 })) })
  const nodes = [
    new NodeConfig({ nodeId: 'a', nodeType: NodeType.SATELLITE, memoryGb: 2, computeTflops: 1 }),
    new NodeConfig({ nodeId: 'b', nodeType: NodeType.GROUND, memoryGb: 1, computeTflops: 1 }),
  ]
  const e1 = t.throws(() => opt.evaluate(profile, nodes, { l0: 'a', l1: 'b', l2: 'a' }), { code: 'ERR_INVALID_PLACEMENT' })
  t.regex(e1!.message, /'l2'/)
  const e2 = t.throws(() => opt.evaluate(profile, nodes, { l0: 'a', l1: 'b', l2: 'b' }), { code: 'ERR_INVALID_PLACEMENT' })
  t.regex(e2!.message, /'b'/)
  t.throws(() => opt.evaluate(profile, nodes, { l0: 'a', l1: 'a' }), { code: 'ERR_INVALID_PLACEMENT' })
  t.throws(() => opt.evaluate(profile, nodes, { l0: 'a', l1: 'a', l2: 'zz' }), { code: 'ERR_UNKNOWN_NODE' })
})

test('input errors', (t) => {
  const opt = new PartitionOptimizer()
  t.throws(() => new ModelProfile({ layers: [] }), { code: 'ERR_INVALID_ARG' })
  t.throws(() => new ModelProfile({ layers: [{ name: 'x', paramsMb: 1, flops: 1 }, { name: 'x', paramsMb: 1, flops: 1 }] }), { code: 'ERR_INVALID_ARG' })
  t.throws(() => new ModelProfile({ layers: [{ name: 'x', paramsMb: NaN, flops: 1 }] }), { code: 'ERR_NON_FINITE' })
  t.throws(() => new ModelProfile({ layers: [{ name: 'x', paramsMb: -1, flops: 1 }] }), { code: 'ERR_INVALID_ARG' })
  t.throws(() => new NodeConfig({ nodeId: 'n', nodeType: NodeType.GROUND, memoryGb: -1, computeTflops: 1 }), { code: 'ERR_INVALID_ARG' })
  const p = new ModelProfile({ layers: [{ name: 'x', paramsMb: 1, flops: 1 }] })
  const n = { nodeId: 'n', nodeType: NodeType.GROUND, memoryGb: 1, computeTflops: 1 }
  t.throws(() => opt.optimize(p, []), { code: 'ERR_INVALID_ARG' })
  t.throws(() => opt.optimize(p, [n, n]), { code: 'ERR_DUPLICATE_NODE' })
  t.throws(() => opt.optimize(p, [n], { inputNode: 'nope' }), { code: 'ERR_UNKNOWN_NODE' })
  const whole = new ModelProfile({ layers: [{ name: 'a', paramsMb: 900, flops: 1 }, { name: 'b', paramsMb: 900, flops: 1 }] })
  const e = t.throws(() => opt.optimize(whole, [n]), { code: 'ERR_INFEASIBLE' })
  t.regex(e!.message, /whole model/)
})

test('optimizeAsync resolves to the same plan and rejects with codes', async (t) => {
  const opt = new PartitionOptimizer()
  const profile = ModelProfile.createTransformer({ numLayers: 12 })
  const nodes = [
    { nodeId: 'sat', nodeType: NodeType.SATELLITE, memoryGb: 8, computeTflops: 2 },
    { nodeId: 'gs', nodeType: NodeType.GROUND, memoryGb: 32, computeTflops: 100 },
  ]
  t.deepEqual(await opt.optimizeAsync(profile, nodes), opt.optimize(profile, nodes))
  const tiny = [{ nodeId: 'sat', nodeType: NodeType.SATELLITE, memoryGb: 0.1, computeTflops: 2 }]
  await t.throwsAsync(opt.optimizeAsync(profile, tiny), { code: 'ERR_INFEASIBLE' })
})

test('LatencyEstimator matches the peer formula', (t) => {
  const est = new LatencyEstimator()
  const prop = (550 / 299792.458) * 1000
  t.true(Math.abs(est.propagationDelayMs - prop) < 1e-12)
  // 1 MB up at 100 Mbps = 80 ms, 2 MB down at 200 Mbps = 80 ms, + 2·prop + 2·5 ms.
  t.true(Math.abs(est.estimateRoundTripMs(1e6, 2e6) - (160 + 2 * prop + 10)) < 1e-9)
  t.is(est.estimateTransferTimeMs(1e6, false), 40)
  t.throws(() => new LatencyEstimator({ uplinkBandwidthMbps: 0 }), { code: 'ERR_INVALID_ARG' })
})

test('searchLimit: a tiny budget stops the exact search with ERR_SEARCH_LIMIT and a proven bound', (t) => {
  const opt = new PartitionOptimizer({ objective: PartitionObjective.THROUGHPUT, outputNodeType: NodeType.SATELLITE })
  const layers = Array.from({ length: 12 }, (_, i) => ({ name: `l${i}`, paramsMb: 1, flops: (1 + (i % 3)) * 1e9, activationMb: 0 }))
  const nodes = Array.from({ length: 6 }, (_, i) => ({ nodeId: `s${i}`, nodeType: NodeType.SATELLITE, memoryGb: 0.003, computeTflops: 1 + (i % 2) }))
  const profile = new ModelProfile({ layers, inputMb: 0 })
  const e = t.throws(() => opt.optimize(profile, nodes, { searchLimit: 1 }), { code: 'ERR_SEARCH_LIMIT' })
  // The stated bound holds for the optimum found with the default budget.
  const m = /period is (at least|more than) ([0-9.e+]+) ms/.exec(e!.message)
  t.truthy(m, e!.message)
  const best = opt.optimize(profile, nodes).pipelinePeriodMs
  const bound = Number(m![2])
  t.true(m![1] === 'at least' ? best >= bound : best > bound, `${best} vs ${m![0]}`)
  t.throws(() => opt.optimize(profile, nodes, { searchLimit: 0.5 }), { code: 'ERR_INVALID_ARG' })
})

test('tieBreakLimit: a cut-short latency tie-break keeps the optimal period and says so', (t) => {
  // A tight pipeline: 120 layers over 16 nodes of 4 kinds, so many period-optimal plans exist.
  const r = rng(7)
  const layers = Array.from({ length: 120 }, (_, i) => ({
    name: `l${i}`,
    paramsMb: 40 + Math.floor(r() * 80),
    flops: (1 + Math.floor(r() * 50)) * 1e9,
    activationMb: 1 + Math.floor(r() * 8),
  }))
  const profile = new ModelProfile({ layers, inputMb: 50 })
  const shapes = [['satellite', 8, 2], ['relay', 16, 4], ['ground', 32, 10], ['edge', 4, 1]] as const
  const nodes = Array.from({ length: 16 }, (_, i) => ({ nodeId: `n${i}`, nodeType: shapes[i % 4][0], memoryGb: shapes[i % 4][1], computeTflops: shapes[i % 4][2] }))
  const opt = new PartitionOptimizer({ objective: PartitionObjective.THROUGHPUT })
  const full = opt.optimize(profile, nodes, { tieBreakLimit: 10_000_000 })
  const short = opt.optimize(profile, nodes, { tieBreakLimit: 1 })
  t.true(full.tieBreakExact)
  t.false(short.tieBreakExact)
  t.is(short.pipelinePeriodMs, full.pipelinePeriodMs)
  t.true(full.estimatedLatencyMs <= short.estimatedLatencyMs)
  // The short plan is a real placement: evaluate() gives it the same costs.
  const again = opt.evaluate(profile, nodes, short.assignments)
  t.is(again.pipelinePeriodMs, short.pipelinePeriodMs)
  t.is(again.estimatedLatencyMs, short.estimatedLatencyMs)
  for (const bad of [0, 0.5, -1, NaN, 1e8]) {
    const e = t.throws<NodeJS.ErrnoException>(() => opt.optimize(profile, nodes, { tieBreakLimit: bad }))!
    t.is(e.code, 'ERR_INVALID_ARG')
    t.regex(e.message, /tieBreakLimit/)
    // Defaults given to the constructor are checked there, not at every later call.
    const c = t.throws<NodeJS.ErrnoException>(() => new PartitionOptimizer({ tieBreakLimit: bad }))!
    t.is(c.code, 'ERR_INVALID_ARG')
    t.regex(c.message, /tieBreakLimit/)
  }
  t.is(t.throws<NodeJS.ErrnoException>(() => new PartitionOptimizer({ links: [{ from: 'ground', to: 'satellite', bandwidthMbps: -1, latencyMs: 1 }] }))!.code, 'ERR_INVALID_ARG')
  // evaluate names its assignments argument.
  const e = t.throws<NodeJS.ErrnoException>(() => opt.evaluate(profile, nodes, null as any))!
  t.is(e.code, 'ERR_INVALID_ARG')
  t.regex(e.message, /assignments must be an object/)
})

// Plans are built in JavaScript from packed numbers (partition.js); this pins the object to
// the declared PartitionPlan / PartitionStage types and checks every field against an
// independent reading of the plan (its stages, the nodes given, the declared formulas).
test('plan objects: every declared field, in declared order, consistent with their stages', async (t) => {
  const { readFileSync } = await import('node:fs')
  const dts = readFileSync(new URL('../index.d.ts', import.meta.url), 'utf8')
  const fields = (iface: string) =>
    [...new RegExp(`export interface ${iface} \\{([\\s\\S]*?)\\n\\}`).exec(dts)![1].matchAll(/^ {2}(\w+)\??:/gm)].map((m) => m[1])
  const profile = ModelProfile.createTransformer({ numLayers: 4 })
  const nodes = [
    new NodeConfig({ nodeId: 'sat-a', nodeType: NodeType.SATELLITE, memoryGb: 0.2, computeTflops: 2 }),
    { nodeId: 'sat-b', nodeType: NodeType.SATELLITE, memoryGb: 0.2, computeTflops: 2 },
    { nodeId: 'relay', nodeType: NodeType.RELAY, memoryGb: 0.3, computeTflops: 4 },
    { nodeId: 'gs', nodeType: NodeType.GROUND, memoryGb: 0.3, computeTflops: 10 },
    { nodeId: 'spare', nodeType: NodeType.EDGE, memoryGb: 0.001, computeTflops: 1 },
  ]
  const opt = new PartitionOptimizer()
  const names = profile.layers.map((l) => l.name)
  const all = opt.compareObjectives(profile, nodes)
  for (const [objective, plan] of [
    [PartitionObjective.LATENCY, all.latency],
    [PartitionObjective.THROUGHPUT, all.throughput],
    [PartitionObjective.BOUNDARY_BYTES, all.boundaryBytes],
  ] as const) {
    t.deepEqual(plan, opt.optimize(profile, nodes, { objective }))
    t.deepEqual(Object.keys(plan), fields('PartitionPlan'))
    plan.stages.forEach((s) => t.deepEqual(Object.keys(s), fields('PartitionStage')))
    t.is(plan.objective, objective)
    // Assignments list every layer once, in layer order, on its stage's node.
    t.deepEqual(Object.keys(plan.assignments), names)
    t.deepEqual(plan.stages.flatMap((s) => s.layers), names)
    for (const s of plan.stages) for (const l of s.layers) t.is(plan.assignments[l], s.nodeId)
    const byId = new Map(nodes.map((n) => [n.nodeId, n]))
    for (const s of plan.stages) {
      const n = byId.get(s.nodeId)!
      t.is(s.nodeType, n.nodeType)
      t.is(s.memoryCapacityMb, n.memoryGb * 1000)
      t.is(s.memoryGb, s.memoryMb / 1000)
      const want = profile.layers.filter((l) => s.layers.includes(l.name))
      t.true(close(s.memoryMb, want.reduce((a, l) => a + l.paramsMb + (l.workspaceMb ?? 0), 0)))
      t.true(close(s.computeMs, want.reduce((a, l) => a + l.flops, 0) / (n.computeTflops * 1e9)))
    }
    t.deepEqual(plan.idleNodes, nodes.map((n) => n.nodeId).filter((id) => !plan.stages.some((s) => s.nodeId === id)))
    t.is(plan.inputNode, 'sat-a')
    t.true(close(plan.computeMs, plan.stages.reduce((a, s) => a + s.computeMs, 0)))
    t.true(close(plan.transferMs, plan.stages.reduce((a, s) => a + s.transferMs, 0) + plan.outputTransferMs))
    t.true(close(plan.estimatedLatencyMs, plan.computeMs + plan.transferMs))
    t.is(plan.spaceGroundBytes, plan.spaceGroundMb * 1e6)
    t.is(plan.throughputPerSecond, 1000 / plan.pipelinePeriodMs)
    t.true(plan.pipelinePeriodMs >= Math.max(...plan.stages.map((s) => s.computeMs)))
    t.is(plan.tieBreakExact, true)
    t.deepEqual(opt.evaluate(profile, nodes, plan.assignments).stages, plan.stages)
  }
  // optimizeAsync reads the node ids at the call: changing `nodes` afterwards changes nothing.
  const copy = nodes.map((n) => ({ nodeId: n.nodeId, nodeType: n.nodeType, memoryGb: n.memoryGb, computeTflops: n.computeTflops }))
  const pending = opt.optimizeAsync(profile, copy)
  copy.forEach((n) => (n.nodeId = 'renamed'))
  t.deepEqual(await pending, all.latency)
})

test('nodes are read once: the plan names the nodes that were solved, whatever getters or the caller do', async (t) => {
  const profile = new ModelProfile({
    layers: [
      { name: 'a', paramsMb: 10, flops: 1e9 },
      { name: 'b', paramsMb: 10, flops: 1e9 },
    ],
  })
  const opt = new PartitionOptimizer()
  // A getter that answers differently on each read: the plan must use the first answer.
  let reads = 0
  const shifting = {
    get nodeId() {
      reads++
      return reads === 1 ? 'sat' : `other-${reads}`
    },
    nodeType: NodeType.SATELLITE,
    memoryGb: 1,
    computeTflops: 1,
  }
  const ground = new NodeConfig({ nodeId: 'gs', nodeType: NodeType.GROUND, memoryGb: 1, computeTflops: 1 })
  const plan = opt.optimize(profile, [shifting, ground])
  t.is(reads, 1)
  for (const s of plan.stages) t.true(['sat', 'gs'].includes(s.nodeId))
  t.true(Object.values(plan.assignments).every((id) => id === 'sat' || id === 'gs'))

  // optimizeAsync: the caller changes the array before the promise settles.
  const nodes = [{ nodeId: 'only', nodeType: 'ground' as const, memoryGb: 1, computeTflops: 1 }]
  const pending = opt.optimizeAsync(profile, nodes)
  nodes[0].nodeId = 'changed'
  t.deepEqual((await pending).assignments, { a: 'only', b: 'only' })

  // A throwing getter rejects the promise (and leaves no unhandled rejection behind).
  const boom = { get nodeId(): string { throw new Error('boom') }, nodeType: NodeType.GROUND, memoryGb: 1, computeTflops: 1 }
  await t.throwsAsync(() => opt.optimizeAsync(profile, [boom]), { message: /boom/ })

  // Not an array, or an entry that is not an object: ERR_INVALID_ARG naming the argument.
  for (const [bad, name] of [[null, /nodes must be an array/], [undefined, /nodes must be an array/], ['abc', /nodes must be an array/], [[1], /nodes\[0\] must be/], [[{ nodeType: 'ground', memoryGb: 1, computeTflops: 1 }], /nodes\[0\]\.nodeId is missing/]] as const) {
    const e = t.throws<NodeJS.ErrnoException>(() => opt.optimize(profile, bad as any))!
    t.is(e.code, 'ERR_INVALID_ARG')
    t.regex(e.message, name)
    t.regex(e.message, /PartitionOptimizer\.optimize/)
  }
})
