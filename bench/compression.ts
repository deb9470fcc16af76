// Gradient compression: this package against Float32Array.slice() (a plain copy) and the
// published pure-JS package, on the same input, in one run. Run after `npm run build`:
//   npx tsx bench/compression.ts            (add --quick to skip the 100M case)
import { readFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { CompressionConfig, CompressionType, FederatedClient } from '../index.js'
import * as peer from 'rotastellar-distributed-js'
import { gaussian, median, time } from './util.js'

const quick = process.argv.includes('--quick')

function peakRssMb(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))
  return m ? Number(m[1]) / 1024 : Number.NaN
}

const timeRuns = (fn: () => void, runs: number) => time(runs, fn)
const fmt = (ms: number) => (ms < 1 ? ms.toFixed(3) : ms.toFixed(1)) + ' ms'

console.log(`Top-1% with error feedback (sparsity 0.99), medians; ${process.arch}, ${cpus().length} cores`)
const sizes = quick ? [1_000_000, 10_000_000] : [1_000_000, 10_000_000, 100_000_000]
for (const n of sizes) {
  const g = gaussian(n, n)
  const runs = n >= 100_000_000 ? 5 : 15
  const slice = timeRuns(() => g.slice(), runs)
  const client = new FederatedClient({
    nodeId: 'sat-001',
    compression: new CompressionConfig({ compressionType: CompressionType.TOP_K, sparsity: 0.99, errorFeedback: true }),
  })
  client.compress(g) // first round allocates the residual
  const rssBefore = process.memoryUsage().rss
  const ours = timeRuns(() => client.compress(g), runs)
  const rssGrowthMb = (process.memoryUsage().rss - rssBefore) / 1e6
  const noEf = new FederatedClient({
    nodeId: 'sat-002',
    compression: new CompressionConfig({ compressionType: CompressionType.TOP_K, sparsity: 0.99, errorFeedback: false }),
  })
  const oursNoEf = timeRuns(() => noEf.compress(g), runs)
  const q = new FederatedClient({
    nodeId: 'sat-003',
    compression: new CompressionConfig({ compressionType: CompressionType.TOP_K_QUANTIZED, sparsity: 0.99, quantizationBits: 8 }),
  })
  q.compress(g)
  const oursQ = timeRuns(() => q.compress(g), runs)
  const c = client.compress(g)
  let peerMs = Number.NaN
  let peerNote = ''
  if (n <= 10_000_000) {
    // The peer takes number[]; converting is not charged to it.
    const arr = Array.from(g)
    const pc = new peer.FederatedClient('sat-001', new peer.CompressionConfig({ method: peer.CompressionMethod.TOP_K, kRatio: 0.01, errorFeedback: true }))
    try {
      const t0 = process.hrtime.bigint()
      pc.compress(arr)
      peerMs = Number(process.hrtime.bigint() - t0) / 1e6
    } catch (e) {
      peerNote = ` (peer failed: ${(e as Error).message})`
    }
  } else {
    peerNote = ' (peer not run: it needs a number[] of this size and a full sort)'
  }
  console.log(
    [
      `n=${n.toLocaleString('en-US')}:`,
      `slice ${fmt(slice)}`,
      `| ours top-k+EF ${fmt(ours)} = ${(ours / slice).toFixed(2)}× slice`,
      `| no EF ${fmt(oursNoEf)}`,
      `| top-k+8-bit+EF ${fmt(oursQ)}`,
      `| peer ${Number.isNaN(peerMs) ? 'n/a' : fmt(peerMs)}${Number.isNaN(peerMs) ? '' : ` → ours ${(peerMs / ours).toFixed(0)}× faster`}${peerNote}`,
      `| wire ${c.wireBytes} B, ratio ${c.compressionRatio.toFixed(1)}×`,
      `| RSS growth while timing ${rssGrowthMb.toFixed(1)} MB`,
    ].join(' '),
  )
}
console.log(`peak RSS ${peakRssMb().toFixed(0)} MB`)
