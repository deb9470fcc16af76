// Mesh networking bench: a 22-plane × 72-satellite Walker-delta shell at 550 km / 53°
// with +Grid ISLs, plus 100 ground stations.
//
//   npm run build && npx tsx bench/mesh.ts
//
// Measures, on the same constellation in one run:
//  1. one findRoute between two ground stations: this package vs the published pure-JS
//     package (rotastellar-distributed-js, given exactly the same nodes and links) vs a
//     plain-JS binary-heap Dijkstra on the same adjacency;
//  2. building the topology for one time step + the all-pairs next-hop table;
//  3. a 10-minute route series at 1-second steps between two ground stations.
import os from 'node:os'
import { SpaceMesh } from '../index.js'
import { SpaceMesh as PeerMesh, createOrbitalNode } from 'rotastellar-distributed-js'
import { median, now, rng, time } from './util.js'

/** Median wall time and median process CPU time (all threads) of `fn`, ms. */
function timeCpu(reps: number, fn: () => void): { wall: number; cpu: number } {
  const wall: number[] = []
  const cpu: number[] = []
  for (let i = 0; i < reps; i++) {
    const c0 = process.cpuUsage()
    const t0 = now()
    fn()
    wall.push(now() - t0)
    const c = process.cpuUsage(c0)
    cpu.push((c.user + c.system) / 1000)
  }
  return { wall: median(wall), cpu: median(cpu) }
}

const EPOCH = new Date('2026-01-01T00:00:00Z')
const T = new Date(EPOCH.getTime() + 3_600_000)
const shell = { planes: 22, satsPerPlane: 72, phasing: 17, altitudeKm: 550, inclinationDeg: 53, epoch: EPOCH }

function build(): SpaceMesh {
  const mesh = new SpaceMesh()
  mesh.addWalkerShell(shell)
  // Three fixed stations (New York, London, Sydney), then 97 seeded ones within ±55° latitude.
  mesh.addGroundStation({ nodeId: 'gs-0', position: { latitude: 40.71, longitude: -74.0 } })
  mesh.addGroundStation({ nodeId: 'gs-1', position: { latitude: 51.5, longitude: -0.13 } })
  mesh.addGroundStation({ nodeId: 'gs-2', position: { latitude: -33.87, longitude: 151.21 } })
  const r = rng(12345)
  for (let i = 3; i < 100; i++) {
    mesh.addGroundStation({ nodeId: `gs-${i}`, position: { latitude: -55 + 110 * r(), longitude: -180 + 360 * r() } })
  }
  return mesh
}

console.log(`machine: ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), node ${process.version}`)
const tb0 = now()
const mesh = build()
console.log(`constellation built (1,584 satellites + 100 ground stations) in ${(now() - tb0).toFixed(1)} ms`)

// ---------------------------------------------------------------- 2. topology + all-pairs
const stepMs = timeCpu(5, () => {
  mesh.updateTopology(T)
})
let tableNodes = 0
const stepAndTableMs = timeCpu(5, () => {
  mesh.updateTopology(T)
  tableNodes = mesh.nextHopTable().size
})
const st = mesh.stats()
console.log(`\nmesh at t: ${st.nodes} nodes, ${st.linksUp} links up (${mesh.links().filter((l) => l.origin === 'ground').length} ground links), degree ${st.minDegree}–${st.maxDegree}, ${st.components} component(s), diameter ${st.diameterHops} hops / ${st.diameterLatencyMs.toFixed(1)} ms`)

// ---------------------------------------------------------------- 1. one findRoute
// The same nodes and links in the published JS package. It has no addLink: its routing
// reads its private `links` / `adjacency` maps, which are filled here from our links.
mesh.updateTopology(T)
const peer = new PeerMesh()
const ids = mesh.nodeIds()
for (const id of ids) peer.addNode(createOrbitalNode(id))
const pAny = peer as any
const adj: Map<string, Array<[string, number]>> = new Map(ids.map((id) => [id, []]))
for (const l of mesh.links()) {
  if (!l.up || !Number.isFinite(l.latencyMs)) continue
  for (const [a, b] of [[l.a, l.b], [l.b, l.a]]) {
    pAny.links.set(`${a}-${b}`, { sourceId: a, targetId: b, distanceKm: l.distanceKm, bandwidthGbps: l.bandwidthMbps / 1000, latencyMs: l.latencyMs, linkType: 'optical', active: true })
    pAny.adjacency.get(a).add(b)
    adj.get(a)!.push([b, l.latencyMs])
  }
}

// Plain JS: binary-heap Dijkstra with early exit on the same adjacency (string ids).
function plainDijkstra(s: string, t: string): number {
  const dist = new Map<string, number>([[s, 0]])
  const heap: Array<[number, string]> = [[0, s]]
  const push = (x: [number, string]) => {
    heap.push(x)
    let i = heap.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (heap[p][0] <= heap[i][0]) break
      ;[heap[p], heap[i]] = [heap[i], heap[p]]
      i = p
    }
  }
  const pop = (): [number, string] => {
    const top = heap[0]
    const last = heap.pop()!
    if (heap.length) {
      heap[0] = last
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < heap.length && heap[l][0] < heap[m][0]) m = l
        if (r < heap.length && heap[r][0] < heap[m][0]) m = r
        if (m === i) break
        ;[heap[m], heap[i]] = [heap[i], heap[m]]
        i = m
      }
    }
    return top
  }
  const done = new Set<string>()
  while (heap.length) {
    const [d, u] = pop()
    if (done.has(u)) continue
    done.add(u)
    if (u === t) return d
    if (u !== s && u.startsWith('gs-')) continue // ground stations do not relay
    for (const [v, w] of adj.get(u)!) {
      const nd = d + w
      if (nd < (dist.get(v) ?? Infinity)) {
        dist.set(v, nd)
        push([nd, v])
      }
    }
  }
  return Infinity
}

type RouteBench = { pair: string; hops: number; latency: number; warm: number; cold: number; plain: number; peer: number }
function benchPair(src: string, dst: string): RouteBench {
  const ours = mesh.findRoute(src, dst)!
  const peerRoute = peer.findRoute(src, dst)
  if (Math.abs(peerRoute.totalLatencyMs - ours.totalLatencyMs) > 1e-3) throw new Error(`peer ${peerRoute.totalLatencyMs} vs ours ${ours.totalLatencyMs}: not the same graph`)
  if (Math.abs(plainDijkstra(src, dst) - ours.totalLatencyMs) > 1e-9) throw new Error('plain Dijkstra disagrees')
  const cold: number[] = []
  for (let i = 0; i < 5; i++) {
    mesh.updateTopology(T) // a time step: the next query rebuilds the routing snapshot
    const t0 = now()
    mesh.findRoute(src, dst)
    cold.push(now() - t0)
  }
  return {
    pair: `${src} → ${dst}`,
    hops: ours.hopCount,
    latency: ours.totalLatencyMs,
    warm: time(2001, () => void mesh.findRoute(src, dst)),
    cold: median(cold),
    plain: time(201, () => void plainDijkstra(src, dst)),
    peer: time(5, () => void peer.findRoute(src, dst)),
  }
}
const routeBenches = [benchPair('gs-0', 'gs-1'), benchPair('gs-0', 'gs-2')]

// ---------------------------------------------------------------- 3. route series
const seriesMs = timeCpu(3, () => {
  mesh.routeSeries('gs-0', 'gs-1', { start: T, durationS: 600, stepS: 1 })
})
const series = mesh.routeSeries('gs-0', 'gs-1', { start: T, durationS: 600, stepS: 1 })
const lat = Array.from(series.latencyMs).filter(Number.isFinite)

const f = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 1 ? x.toFixed(2) : x.toFixed(4))
console.log('\n| findRoute (same graph) | links | latency | this package | this package, first query after a step | plain JS heap Dijkstra | rotastellar-distributed-js 0.1.1 | peer ÷ ours |')
console.log('|---|---:|---:|---:|---:|---:|---:|---:|')
for (const b of routeBenches) {
  console.log(`| ${b.pair} | ${b.hops} | ${b.latency.toFixed(3)} ms | ${f(b.warm)} ms | ${f(b.cold)} ms | ${f(b.plain)} ms (${(b.plain / b.warm).toFixed(0)}×) | ${f(b.peer)} ms | ${(b.peer / b.warm).toFixed(0)}× (${(b.peer / b.cold).toFixed(0)}× vs first query) |`)
}
console.log('\n| whole constellation | median wall | CPU time | target |')
console.log('|---|---:|---:|---:|')
console.log(`| updateTopology (one time step, 1,684 nodes) | ${f(stepMs.wall)} ms | ${f(stepMs.cpu)} ms | |`)
console.log(`| updateTopology + nextHopTable (${tableNodes}² next hops) | ${f(stepAndTableMs.wall)} ms | ${f(stepAndTableMs.cpu)} ms | < 1000 ms |`)
console.log(`| routeSeries 10 min at 1 s (601 steps) | ${f(seriesMs.wall)} ms | ${f(seriesMs.cpu)} ms | < 10000 ms |`)
console.log(`(load average at the end of the run: ${os.loadavg().map((x) => x.toFixed(1)).join(', ')}; CPU time summed over threads)`)
console.log(`\nseries: ${series.changes.length - 1} path changes in 10 min; latency ${Math.min(...lat).toFixed(2)}–${Math.max(...lat).toFixed(2)} ms, reachable ${lat.length}/${series.latencyMs.length} steps`)
