// Transfer planner bench: 10,000 transfers for 100 satellites over 5,000 contact windows
// (20 stations, 7 days), planned in one call.
//
//   npm run build && npx tsx bench/planner.ts
//
// Measures, on the same input in one run:
//  1. queueing the 10,000 transfers: TransferPlanner.enqueue vs the published pure-JS
//     package's PriorityQueue.addTask (rotastellar-distributed-js);
//  2. what the peer can do with windows: fill each window, in time order, with the queue's
//     tasks first-fit by priority (its `optimize` loop over `getTasksForWindow`; capacity
//     only: no satellite matching, no time inside a window, no antennas, no deadlines
//     checked) vs the same first-fit loop on our queue (`takeForCapacity`);
//  3. our full plan (satellite matching, time inside windows, antennas, deadlines,
//     splitting) — more work than 2, reported on its own.
import { TransferPlanner, TransferPriority, type PlannerWindow } from '../index.js'
import { PriorityQueue, Priority } from 'rotastellar-distributed-js'
import { median, now, rng, time } from './util.js'


const N_TRANSFERS = Number(process.env.N_TRANSFERS ?? 10_000)
const N_WINDOWS = Number(process.env.N_WINDOWS ?? 5_000)
const SATS = 100
const STATIONS = 20
const T0 = Date.UTC(2026, 0, 1)
const WEEK_S = 7 * 86_400

const r = rng(42)
// Passes of 4–12 min at 200 Mbps downlink (25 MB/s) and 2 Mbps uplink.
const windows: PlannerWindow[] = Array.from({ length: N_WINDOWS }, () => {
  const a = Math.floor(r() * WEEK_S)
  const d = 240 + Math.floor(r() * 480)
  return {
    satelliteId: `sat-${Math.floor(r() * SATS)}`,
    station: { name: `gs-${Math.floor(r() * STATIONS)}` },
    startTime: new Date(T0 + a * 1000),
    endTime: new Date(T0 + (a + d) * 1000),
    dataCapacityMb: (d * 200) / 8,
    uplinkCapacityMb: (d * 2) / 8,
  }
}).sort((x, y) => x.startTime.getTime() - y.startTime.getTime())
const PR = [TransferPriority.CRITICAL, TransferPriority.HIGH, TransferPriority.NORMAL, TransferPriority.LOW]
const PEER_PR = [Priority.CRITICAL, Priority.HIGH, Priority.NORMAL, Priority.LOW]
const transfers = Array.from({ length: N_TRANSFERS }, (_, i) => ({
  transferId: `t${i}`,
  satelliteId: `sat-${Math.floor(r() * SATS)}`,
  sizeMb: 1 + Math.floor(r() * 4000),
  p: Math.floor(r() * 4),
  deadline: new Date(T0 + Math.floor(r() * WEEK_S) * 1000),
  splittable: r() < 0.7,
}))

function fillOurs(): TransferPlanner {
  const q = new TransferPlanner()
  for (const t of transfers) {
    q.enqueue({ transferId: t.transferId, satelliteId: t.satelliteId, sizeMb: t.sizeMb, priority: PR[t.p], deadline: t.deadline, splittable: t.splittable })
  }
  return q
}
function fillPeer(): PriorityQueue {
  const q = new PriorityQueue()
  for (const t of transfers) q.addTask(t.satelliteId, t.sizeMb * 1e6, PEER_PR[t.p], '', t.deadline)
  return q
}

console.log(`transfer planner bench: ${N_TRANSFERS} transfers, ${N_WINDOWS} windows, ${SATS} satellites, ${STATIONS} stations, 7 days`)
const rows: Array<[string, number, number | null]> = []

// 1. queueing
const oursEnq = time(5, () => void fillOurs())
const peerEnq = time(1, () => void fillPeer())
rows.push(['enqueue all (ours) vs addTask all (peer)', oursEnq, peerEnq])

// 2. first-fit per window, capacity only
// Which transfer (index) each window took, to check both follow the same rule.
let oursTaken: string[] = []
let peerTaken: string[] = []
const oursFF = time(3, () => {
  const q = fillOurs()
  oursTaken = windows.map((w) => q.takeForCapacity(w.dataCapacityMb).map((x) => x.transferId.slice(1)).join(','))
})
const peerFF = time(1, () => {
  const q = fillPeer()
  peerTaken = windows.map((w) => q.getTasksForWindow(w.dataCapacityMb * 1e6).map((x) => String(Number(x.taskId.slice(5)) - 1)).join(','))
})
rows.push(['queue + first-fit per window (peer optimize loop)', oursFF, peerFF])

// 3. our full plan
const q = fillOurs()
let plan = q.plan(windows)
const planMs = time(5, () => {
  plan = q.plan(windows)
})
rows.push(['full plan (ours only: time, satellites, antennas, deadlines)', planMs, null])
const asyncT0 = now()
await q.planAsync(windows)
rows.push(['full planAsync (ours, one run)', now() - asyncT0, null])

console.log('\n| step | ours (ms, median) | peer (ms, median) | peer ÷ ours |')
console.log('|---|---:|---:|---:|')
for (const [name, o, p] of rows) {
  console.log(`| ${name} | ${o.toFixed(1)} | ${p === null ? '—' : p.toFixed(1)} | ${p === null ? '—' : (p / o).toFixed(1) + '×'} |`)
}
const same = oursTaken.every((x, i) => x === peerTaken[i])
const count = (xs: string[]) => xs.reduce((n, x) => n + (x ? x.split(',').length : 0), 0)
console.log(`\nfirst-fit: ours took ${count(oursTaken)} transfers, peer ${count(peerTaken)}; same transfers in every window: ${same}`)
const s = plan.summary
console.log(
  `full plan: ${s.placedTransfers} placed (${s.pieces} pieces, ${s.placedMb.toFixed(0)} MB), ${s.unplacedTransfers} unplaced; ` +
    `windows used ${s.windowsUsed}/${N_WINDOWS}; utilisation ${(100 * s.utilisation).toFixed(1)}%`,
)
const codes: Record<string, number> = {}
for (const u of plan.unplaced) codes[u.code] = (codes[u.code] ?? 0) + 1
console.log('unplaced by code:', JSON.stringify(codes))
console.log(
  'by priority (placed/unplaced):',
  Object.entries(s.byPriority)
    .map(([k, v]) => `${k} ${v.placed}/${v.unplaced}`)
    .join(', '),
)
