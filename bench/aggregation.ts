// Gradient aggregation: this package against plain JavaScript loops over the same
// Float32Arrays, a native read-only pass over the inputs, and the published pure-JS
// package, in one run on the same data. Run after `npm run build` (release):
//   npx tsx bench/aggregation.ts            (add --quick for fewer repetitions)
import { cpus } from 'node:os'
import { AggregationStrategy, CompressionConfig, CompressionType, FederatedClient, GradientAggregator } from '../index.js'
import * as peer from 'rotastellar-distributed-js'
import { gaussian, median, time, timePaired } from './util.js'

const quick = process.argv.includes('--quick')

const timeRuns = (fn: () => void, runs: number) => time(runs, fn)
const fmt = (ms: number) => (ms < 1 ? ms.toFixed(3) : ms.toFixed(1)) + ' ms'
const runs = quick ? 3 : 9
const jsRuns = quick ? 3 : 5
let sink = 0

console.log(`Gradient aggregation, medians of ${runs} (JS: ${jsRuns}) runs; ${process.arch}, ${cpus().length} cores, Node ${process.version}`)

// ---- 1. Weighted FedAvg of 16 dense updates of 10M ------------------------------------
const N = 10_000_000
const M = 16
// Each input's second half repeats its first half (values are still gaussian and
// differ between inputs), so that Buffer.compare(firstHalf, secondHalf) -- a memcmp that
// finds them equal -- reads every byte of the input exactly once, natively: the floor.
const gs = Array.from({ length: M }, (_, i) => {
  const g = new Float32Array(N)
  g.set(gaussian(N / 2, 1 + i))
  g.copyWithin(N / 2, 0, N / 2)
  return g
})
const weights = Array.from({ length: M }, (_, i) => 1 + (i % 5))
const agg = new GradientAggregator({ strategy: AggregationStrategy.FEDAVG })

const halves = gs.map((g) => [
  Buffer.from(g.buffer, g.byteOffset, g.byteLength / 2),
  Buffer.from(g.buffer, g.byteOffset + g.byteLength / 2, g.byteLength / 2),
])
const readOnce = timeRuns(() => {
  for (const [a, b] of halves) sink += Buffer.compare(a, b)
}, runs)
if (halves.some(([a, b]) => Buffer.compare(a, b) !== 0)) throw new Error('halves differ')

function jsWeightedSum(xs: Float32Array[], w: number[]): Float32Array {
  const total = w.reduce((a, b) => a + b, 0)
  const out = new Float32Array(xs[0].length)
  for (let i = 0; i < xs.length; i++) {
    const g = xs[i]
    const wi = w[i] / total
    for (let j = 0; j < out.length; j++) out[j] += wi * g[j]
  }
  return out
}

agg.aggregate(gs, { weights }) // warm-up
const ours = timeRuns(() => {
  sink += agg.aggregate(gs, { weights })[0]
}, runs)
jsWeightedSum(gs, weights)
const js = timeRuns(() => {
  sink += jsWeightedSum(gs, weights)[0]
}, jsRuns)
{
  const a = agg.aggregate(gs, { weights })
  const b = jsWeightedSum(gs, weights)
  let worst = 0
  for (let j = 0; j < N; j += 997) worst = Math.max(worst, Math.abs(a[j] - b[j]))
  console.log(`check: ours vs JS max |diff| on a sample = ${worst.toExponential(2)}`)
}
// The same with a reused output (`{ out }`): no fresh 40 MB to page-fault in.
const out = new Float32Array(N)
agg.aggregate(gs, { weights, out })
const oursOut = timeRuns(() => {
  sink += agg.aggregate(gs, { weights, out })[0]
}, runs)
const fresh = timeRuns(() => {
  sink += new Float32Array(N).fill(1)[0]
}, runs)
console.log(
  `FedAvg 16 × 10M dense (weighted): ours ${fmt(ours)} | plain JS loop ${fmt(js)} → ${(js / ours).toFixed(1)}× faster (target ≥ 3×)` +
    ` | read-once floor ${fmt(readOnce)} → ours = ${(ours / readOnce).toFixed(2)}× of it (target ≤ 2×)`,
)
console.log(
  `  with { out } reused: ${fmt(oursOut)} = ${(oursOut / readOnce).toFixed(2)}× the read-once floor, ${(js / oursOut).toFixed(1)}× the JS loop` +
    ` | (first touch of a fresh 40 MB Float32Array alone: ${fmt(fresh)})`,
)

// ---- 2. 16 top-1% sparse updates of 10M ------------------------------------------------
const sparse = gs.map((g, i) =>
  new FederatedClient({
    nodeId: `sat-${i}`,
    compression: new CompressionConfig({ compressionType: CompressionType.TOP_K, sparsity: 0.99, errorFeedback: false }),
  }).compress(g),
)
agg.aggregate(sparse, { weights })
const oursSparse = timeRuns(() => {
  sink += agg.aggregate(sparse, { weights })[0]
}, runs)
// Like for like: the sparse and the dense round into a reused `{ out }`, alternated so
// that both see the same moments of the shared machine; that is the aggregation work
// itself. With a fresh result both also pay the OS's first touch of 40 MB (timed above),
// which is most of the sparse round.
const pairs = timePaired(
  quick ? 5 : 21,
  () => {
    sink += agg.aggregate(gs, { weights, out })[0]
  },
  () => {
    sink += agg.aggregate(sparse, { weights, out })[0]
  },
)
console.log(
  `FedAvg 16 × 10M top-1% sparse into { out }: ours ${fmt(pairs.b)} against dense { out } ${fmt(pairs.a)} in alternation → ${pairs.ratio.toFixed(3)} of the dense { out } time (median of pair ratios; target ≤ 0.1)` +
    ` | ${(pairs.b / ours).toFixed(3)} of the dense README call (new output, ${fmt(ours)})`,
)
console.log(
  `  new result each call: ${fmt(oursSparse)} = ${(oursSparse / ours).toFixed(3)} of the dense new-output time (a fresh 40 MB array's first touch alone: ${fmt(fresh)})`,
)
// The same round with a sparse result (aggregateSparse): a CompressedGradient over the
// union of the inputs' positions, no dense array at all. Checked against aggregate first.
{
  const s = agg.aggregateSparse(sparse, { weights }).decompress()
  const d = agg.aggregate(sparse, { weights })
  const o = agg.aggregate(sparse, { weights, out: new Float32Array(N).fill(Number.NaN) })
  let same = 0
  let sameOut = 0
  for (let j = 0; j < N; j++) {
    same += s[j] === d[j] ? 1 : 0
    sameOut += o[j] === d[j] ? 1 : 0
  }
  console.log(`check: aggregateSparse densified equals aggregate at ${same} of ${N} positions, { out } at ${sameOut}`)
}
const sparseResult = timeRuns(() => {
  sink += agg.aggregateSparse(sparse, { weights }).nnz
}, runs)
const reused = agg.aggregateSparse(sparse, { weights })
const sparsePairs = timePaired(
  quick ? 5 : 21,
  () => {
    sink += agg.aggregate(gs, { weights, out })[0]
  },
  () => {
    sink += agg.aggregateSparse(sparse, { weights, out: reused }).nnz
  },
)
console.log(
  `  sparse result (aggregateSparse, ${reused.nnz} entries) reusing { out }: ${fmt(sparsePairs.b)} against dense { out } ${fmt(sparsePairs.a)} in alternation → ${sparsePairs.ratio.toFixed(3)} of the dense { out } time` +
    ` | new result each call: ${fmt(sparseResult)} = ${(sparseResult / ours).toFixed(3)} of the dense new-output time`,
)

// ---- 3. Coordinate-wise median of 16 × 1M --------------------------------------------
const n1 = 1_000_000
const small = gs.map((g) => g.subarray(0, n1))
const med = new GradientAggregator({ strategy: AggregationStrategy.MEDIAN })
function jsMedian(xs: Float32Array[]): Float32Array {
  const m = xs.length
  const out = new Float32Array(xs[0].length)
  const col = new Float64Array(m)
  for (let j = 0; j < out.length; j++) {
    for (let i = 0; i < m; i++) col[i] = xs[i][j]
    col.sort()
    out[j] = m % 2 ? col[(m - 1) / 2] : (col[m / 2 - 1] + col[m / 2]) / 2
  }
  return out
}
med.aggregate(small)
const oursMed = timeRuns(() => {
  sink += med.aggregate(small)[0]
}, runs)
const jsMed = timeRuns(() => {
  sink += jsMedian(small)[0]
}, quick ? 1 : 3)
{
  const a = med.aggregate(small)
  const b = jsMedian(small)
  let same = 0
  for (let j = 0; j < n1; j++) same += a[j] === b[j] ? 1 : 0
  console.log(`check: median equal to the JS result at ${same} of ${n1} coordinates`)
}
console.log(`Median 16 × 1M: ours ${fmt(oursMed)} | plain JS (column + sort) ${fmt(jsMed)} → ${(jsMed / oursMed).toFixed(1)}× faster (target ≥ 5×)`)

// ---- 4. Trimmed mean and Krum, for scale ----------------------------------------------
const tm = new GradientAggregator({ strategy: AggregationStrategy.TRIMMED_MEAN, trimFraction: 0.125 })
const oursTm = timeRuns(() => {
  sink += tm.aggregate(small)[0]
}, runs)
const krum = new GradientAggregator({ strategy: AggregationStrategy.KRUM, faultyNodes: 3 })
const oursKrum = timeRuns(() => {
  sink += krum.aggregate(small)[0]
}, runs)
console.log(`Trimmed mean 16 × 1M: ${fmt(oursTm)} | Krum (f = 3) 16 × 1M: ${fmt(oursKrum)}`)

// ---- 5. The published pure-JS package ------------------------------------------------
// Its aggregator takes { indices: number[], values: number[] } objects; building them is
// not charged to it. 16 updates of 1M, every position present (its dense case).
{
  const P = 1_000_000
  const idx = Array.from({ length: P }, (_, i) => i)
  const msgs = gs.map((g) => ({
    indices: idx,
    values: Array.from(g.subarray(0, P)),
    shape: [P],
    originalSize: P,
    compressedSize: P,
    compressionRatio: 1,
  }))
  const peerTimes: number[] = []
  for (let r = 0; r < (quick ? 1 : 3); r++) {
    const pa = new peer.GradientAggregator(peer.AggregationStrategy.FEDAVG, 1, P)
    const t0 = process.hrtime.bigint()
    msgs.forEach((m, i) => pa.receiveGradients(`sat-${i}`, m as any, weights[i]))
    sink += pa.aggregate()[0]
    peerTimes.push(Number(process.hrtime.bigint() - t0) / 1e6)
  }
  const peerMs = median(peerTimes)
  const oursP = timeRuns(() => {
    sink += agg.aggregate(small, { weights })[0]
  }, runs)
  const stream = timeRuns(() => {
    const s = new GradientAggregator()
    small.forEach((g, i) => s.add(`sat-${i}`, g, { samples: weights[i] }))
    sink += s.finish()[0]
  }, runs)
  console.log(
    `Peer FedAvg 16 × 1M (number[]): ${fmt(peerMs)} | ours aggregate ${fmt(oursP)} → ${(peerMs / oursP).toFixed(0)}× faster` +
      ` | ours add × 16 + finish ${fmt(stream)} → ${(peerMs / stream).toFixed(0)}× faster`,
  )
}
if (sink === 42) console.log('')
