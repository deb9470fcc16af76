// Model partitioning bench.
//
//   npm run build && npx tsx bench/partition.ts
//
// 1. 500 layers over 64 nodes of 4 kinds (16 satellites 8 GB/2 TFLOPS, 16 relays
//    16 GB/4 TFLOPS, 16 ground 32 GB/10 TFLOPS, 16 edge 4 GB/1 TFLOPS), each objective;
// 2. growth with layers (64 nodes) and with nodes (500 layers);
// 3. the peer package's optimize on its 12-layer transformer vs ours on the same profile.
import os from 'node:os'
import { ModelProfile, NodeType, PartitionObjective, PartitionOptimizer } from '../index.js'
import { ModelProfile as PeerProfile, PartitionOptimizer as PeerOptimizer } from 'rotastellar-distributed-js'
import { median, now, rng, time } from './util.js'


/** `l` layers of 40–120 MB, 1–50 GFLOP, 1–8 MB activations; 50 MB input. */
function profile(l: number) {
  const r = rng(99)
  return new ModelProfile({
    name: `bench-${l}`,
    inputMb: 50,
    layers: Array.from({ length: l }, (_, i) => ({
      name: `layer_${i}`,
      paramsMb: 40 + Math.floor(r() * 80),
      flops: (1 + Math.floor(r() * 50)) * 1e9,
      activationMb: 1 + Math.floor(r() * 8),
    })),
  })
}
const SHAPES = [
  [NodeType.SATELLITE, 8, 2],
  [NodeType.RELAY, 16, 4],
  [NodeType.GROUND, 32, 10],
  [NodeType.EDGE, 4, 1],
] as const
function nodes(n: number) {
  return Array.from({ length: n }, (_, i) => {
    const [nodeType, memoryGb, computeTflops] = SHAPES[i % 4]
    return { nodeId: `${nodeType}-${i}`, nodeType, memoryGb, computeTflops }
  })
}

const opt = new PartitionOptimizer()
const f = (x: number) => (x < 1 ? x.toFixed(3) : x < 100 ? x.toFixed(2) : x.toFixed(0))
function run(objective: PartitionObjective, l: number, n: number, reps: number): string {
  const p = profile(l)
  const ns = nodes(n)
  try {
    const plan = opt.optimize(p, ns, { objective })
    const ms = time(reps, () => opt.optimize(p, ns, { objective }))
    return `${f(ms)} ms (${plan.stages.length} stages, ${plan.estimatedLatencyMs.toFixed(0)} ms latency, period ${plan.pipelinePeriodMs.toFixed(1)} ms${plan.tieBreakExact ? '' : ', latency tie-break not proven (tieBreakExact: false)'})`
  } catch (e: any) {
    const t0 = now()
    try {
      opt.optimize(p, ns, { objective })
    } catch {}
    return `${e.code} after ${f(now() - t0)} ms`
  }
}

console.log(`machine: ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), node ${process.version}; shared with other builds, medians`)
const OBJ = [PartitionObjective.LATENCY, PartitionObjective.BOUNDARY_BYTES, PartitionObjective.THROUGHPUT]

console.log('\n| 500 layers × 64 nodes of 4 kinds | median time (target < 100 ms) |')
console.log('|---|---|')
for (const o of OBJ) console.log(`| ${o} | ${run(o, 500, 64, 11)} |`)

console.log('\n| layers (64 nodes) | latency | boundary_bytes | throughput |')
console.log('|---:|---|---|---|')
for (const l of [50, 100, 200, 500, 1000, 2000]) console.log(`| ${l} | ${run(OBJ[0], l, 64, 5)} | ${run(OBJ[1], l, 64, 5)} | ${run(OBJ[2], l, 64, 3)} |`)
console.log('\n| nodes (500 layers) | latency | boundary_bytes | throughput |')
console.log('|---:|---|---|---|')
for (const n of [4, 8, 16, 64, 256]) console.log(`| ${n} | ${run(OBJ[0], 500, n, 5)} | ${run(OBJ[1], 500, n, 5)} | ${run(OBJ[2], 500, n, 3)} |`)
console.log('\n| throughput objective | time |')
console.log('|---|---|')
for (const [l, n] of [[12, 8], [50, 8], [100, 16], [200, 16], [500, 16]]) console.log(`| ${l} layers × ${n} nodes | ${run(OBJ[2], l, n, 3)} |`)

// ------------------------------------------------------------- vs the peer
const peerModel = PeerProfile.createTransformer() // 12 blocks → 26 layers
const peer = new PeerOptimizer()
const ours = ModelProfile.createTransformer() // same defaults, same layout
const pair = [
  { nodeId: 'sat', nodeType: NodeType.SATELLITE, memoryGb: 16, computeTflops: 10 },
  { nodeId: 'gs', nodeType: NodeType.GROUND, memoryGb: 64, computeTflops: 100 },
]
const reps = 2001
for (let i = 0; i < 200; i++) peer.optimize(peerModel), opt.optimize(ours, pair)
const tp = time(reps, () => peer.optimize(peerModel))
const tpl = time(reps, () => peer.optimize(peerModel, 'minimize_latency' as any))
const to = time(reps, () => opt.optimize(ours, pair))
const many = nodes(64)
const tm = time(201, () => opt.optimize(ours, many))
console.log(`\n| 12-layer transformer (${ours.layers.length} layers) | median |`)
console.log('|---|---:|')
console.log(`| rotastellar-distributed-js 0.1.1 optimize (one split point, 2 sites, heuristic) | ${(tp * 1000).toFixed(1)} µs |`)
console.log(`| rotastellar-distributed-js 0.1.1 optimize(model, MINIMIZE_LATENCY) (tries the 27 split points) | ${(tpl * 1000).toFixed(1)} µs |`)
console.log(`| this package, optimal over 1 satellite + 1 ground node | ${(to * 1000).toFixed(1)} µs (peer ÷ ours = ${(tp / to).toFixed(2)}× default, ${(tpl / to).toFixed(2)}× latency) |`)
console.log(`| this package, optimal over 64 nodes of 4 kinds | ${(tm * 1000).toFixed(1)} µs |`)
