import test from 'ava'
import { Position as SdkPosition } from '@rotastellar/sdk'
import { SpaceMesh, MeshNode, Position, type MeshRoute } from '../index.js'

// ---------------------------------------------------------------- helpers written here

/** SplitMix-style 32-bit PRNG (mulberry32), seeded, so property tests are reproducible. */
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

type Edge = [number, number, number, number] // a, b, latency, bandwidth

function randomGraph(r: () => number, n: number, p: number) {
  const mesh = new SpaceMesh()
  for (let i = 0; i < n; i++) {
    mesh.addNode(new MeshNode({ nodeId: `n${i}`, position: { latitude: 0, longitude: i, altitudeKm: 550 } }))
  }
  const edges: Edge[] = []
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      if (r() < p) {
        const lat = Math.floor(r() * 10)
        const bw = 1 + Math.floor(r() * 5) * 100
        mesh.addLink(`n${i}`, `n${j}`, { bandwidthMbps: bw, latencyMs: lat })
        edges.push([i, j, lat, bw])
      }
    }
  }
  return { mesh, edges }
}

/** Floyd–Warshall with a per-edge weight. */
function floyd(n: number, edges: Edge[], w: (e: Edge) => number): number[][] {
  const d = Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i === j ? 0 : Infinity)))
  for (const e of edges) {
    d[e[0]][e[1]] = Math.min(d[e[0]][e[1]], w(e))
    d[e[1]][e[0]] = d[e[0]][e[1]]
  }
  for (let k = 0; k < n; k++)
    for (let i = 0; i < n; i++)
      for (let j = 0; j < n; j++) if (d[i][k] + d[k][j] < d[i][j]) d[i][j] = d[i][k] + d[k][j]
  return d
}

/** Every simple path from s to t. */
function simplePaths(n: number, edges: Edge[], s: number, t: number): number[][] {
  const adj: number[][] = Array.from({ length: n }, () => [])
  for (const [a, b] of edges) {
    adj[a].push(b)
    adj[b].push(a)
  }
  const out: number[][] = []
  const path = [s]
  const on = new Array(n).fill(false)
  on[s] = true
  const go = (u: number) => {
    if (u === t) return void out.push([...path])
    for (const v of adj[u])
      if (!on[v]) {
        on[v] = true
        path.push(v)
        go(v)
        path.pop()
        on[v] = false
      }
  }
  go(s)
  return out
}

function edgeOf(edges: Edge[], a: number, b: number): Edge {
  const e = edges.find((x) => (x[0] === a && x[1] === b) || (x[0] === b && x[1] === a))
  if (!e) throw new Error(`route uses missing link ${a}-${b}`)
  return e
}

/** Checks the route is made of real links and its totals are theirs; returns node numbers. */
function checkRoute(t: any, r: MeshRoute, edges: Edge[], s: number, d: number): number[] {
  const p = r.hops.map((h) => Number(h.slice(1)))
  t.is(p[0], s)
  t.is(p[p.length - 1], d)
  let lat = 0
  let bott = Infinity
  for (let i = 0; i + 1 < p.length; i++) {
    const e = edgeOf(edges, p[i], p[i + 1])
    lat += e[2]
    bott = Math.min(bott, e[3])
  }
  t.true(Math.abs(lat - r.totalLatencyMs) < 1e-9)
  t.is(r.bottleneckMbps, bott)
  t.is(r.hopCount, p.length - 1)
  return p
}

function code(t: any, fn: () => unknown, expected: string, mentions?: RegExp) {
  const e = t.throws(fn) as any
  t.is(e.code, expected, e.message)
  if (mentions) t.regex(e.message, mentions)
}

// ---------------------------------------------------------------- README

test('README mesh example runs as written', (t) => {
  const mesh = new SpaceMesh()
  mesh.addNode(new MeshNode({ nodeId: 'sat-001', position: new Position({ latitude: 45.0, longitude: -122.0, altitudeKm: 550.0 }) }))
  mesh.addNode(new MeshNode({ nodeId: 'sat-002', position: new Position({ latitude: 46.0, longitude: -120.0, altitudeKm: 550.0 }) }))
  mesh.addNode(new MeshNode({ nodeId: 'sat-003', position: new Position({ latitude: 44.0, longitude: -118.0, altitudeKm: 550.0 }) }))
  mesh.addLink('sat-001', 'sat-002', { bandwidthMbps: 1000.0, latencyMs: 2.0 })
  mesh.addLink('sat-002', 'sat-003', { bandwidthMbps: 1000.0, latencyMs: 2.5 })
  const route = mesh.findRoute('sat-001', 'sat-003')!
  t.is(`Route: ${route.hops.join(' -> ')}`, 'Route: sat-001 -> sat-002 -> sat-003')
  t.is(`Total latency: ${route.totalLatencyMs.toFixed(1)} ms`, 'Total latency: 4.5 ms')
  t.is(route.bottleneckMbps, 1000)
  t.is(route.hopCount, 2)
})

test('positions from @rotastellar/sdk (both constructor styles) and plain objects', (t) => {
  const mesh = new SpaceMesh()
  // The README's object form with the SDK's positional constructor.
  const SdkAny = SdkPosition as any
  mesh.addNode(new MeshNode({ nodeId: 'a', position: new SdkAny({ latitude: 0, longitude: 0, altitudeKm: 550 }) }))
  mesh.addNode(new MeshNode({ nodeId: 'b', position: new SdkPosition(0, 10, 550) }))
  mesh.addNode(new MeshNode({ nodeId: 'c', position: { latitude: 0, longitude: 20, altitudeKm: 550 } }))
  t.is(mesh.getNode('a').position.altitudeKm.toFixed(6), '550.000000')
  t.is(mesh.getNode('b').position.longitude.toFixed(9), '10.000000000')
  // Latency left out: chord between the two points at c. 10° of longitude on the equator
  // at radius 6378.137 + 550 km: 2·r·sin(5°).
  mesh.addLink('a', 'b', { bandwidthMbps: 10 })
  const chordKm = 2 * (6378.137 + 550) * Math.sin((5 * Math.PI) / 180)
  const l = mesh.getLink('b', 'a')!
  t.true(Math.abs(l.latencyMs - (chordKm / 299792.458) * 1000) < 1e-9)
  t.true(l.geometricLatency)
  t.true(Math.abs(l.distanceKm - chordKm) < 1e-6)
})

// ---------------------------------------------------------------- correctness vs references

test('findRoute equals Floyd–Warshall for latency, hops and bandwidth on random graphs', (t) => {
  const r = rng(2024)
  for (let round = 0; round < 40; round++) {
    const n = 2 + Math.floor(r() * 8)
    const { mesh, edges } = randomGraph(r, n, 0.25 + 0.5 * r())
    const lat = floyd(n, edges, (e) => e[2])
    const hops = floyd(n, edges, () => 1)
    for (let s = 0; s < n; s++)
      for (let d = 0; d < n; d++) {
        const rl = mesh.findRoute(`n${s}`, `n${d}`)
        const rh = mesh.findRoute(`n${s}`, `n${d}`, { metric: 'hops' })
        const rb = mesh.findRoute(`n${s}`, `n${d}`, { metric: 'bandwidth' })
        if (lat[s][d] === Infinity) {
          t.is(rl as MeshRoute | null, null)
          t.is(rh as MeshRoute | null, null)
          t.is(rb as MeshRoute | null, null)
          continue
        }
        checkRoute(t, rl!, edges, s, d)
        t.is(rl!.totalLatencyMs, lat[s][d])
        checkRoute(t, rh!, edges, s, d)
        t.is(rh!.hopCount, hops[s][d])
        checkRoute(t, rb!, edges, s, d)
        if (s !== d) {
          // Widest path: max over simple paths of the min link bandwidth (brute force).
          const best = Math.max(...simplePaths(n, edges, s, d).map((p) => Math.min(...p.slice(1).map((v, i) => edgeOf(edges, p[i], v)[3]))))
          t.is(rb!.bottleneckMbps, best)
        }
      }
  }
})

test('kShortestRoutes: loop-free, distinct, ordered, and the k best simple paths', (t) => {
  const r = rng(77)
  for (let round = 0; round < 25; round++) {
    const n = 3 + Math.floor(r() * 5)
    const { mesh, edges } = randomGraph(r, n, 0.6)
    const k = 1 + Math.floor(r() * 6)
    const all = simplePaths(n, edges, 0, n - 1)
      .map((p) => p.slice(1).reduce((acc, v, i) => acc + edgeOf(edges, p[i], v)[2], 0))
      .sort((a, b) => a - b)
    const got = mesh.kShortestRoutes('n0', `n${n - 1}`, k)
    t.is(got.length, Math.min(k, all.length))
    const seen = new Set<string>()
    got.forEach((route, i) => {
      const p = checkRoute(t, route, edges, 0, n - 1)
      t.is(new Set(p).size, p.length, 'loop-free')
      t.false(seen.has(p.join()), 'distinct')
      seen.add(p.join())
      t.true(Math.abs(route.totalLatencyMs - all[i]) < 1e-9, `rank ${i}`)
      if (i > 0) t.true(route.totalLatencyMs >= got[i - 1].totalLatencyMs)
    })
  }
  const { mesh } = randomGraph(rng(1), 4, 1)
  code(t, () => mesh.kShortestRoutes('n0', 'n3', 3, { metric: 'bandwidth' }), 'ERR_INVALID_ARG', /bandwidth/)
  code(t, () => mesh.kShortestRoutes('n0', 'n3', -1), 'ERR_INVALID_ARG', /k must be/)
  code(t, () => mesh.kShortestRoutes('n0', 'n3', 1001), 'ERR_INVALID_ARG', /k must be an integer from 0 to 1000/)
  code(t, () => (mesh as any).addLink('n0', 'n1'), 'ERR_INVALID_ARG', /bandwidthMbps/)
  t.deepEqual(mesh.kShortestRoutes('n0', 'n3', 0), [])
})

test('nextHopTable, distancesFrom and routesFrom agree with Floyd–Warshall', async (t) => {
  const r = rng(9)
  for (let round = 0; round < 10; round++) {
    const n = 2 + Math.floor(r() * 12)
    const { mesh, edges } = randomGraph(r, n, 0.3)
    const lat = floyd(n, edges, (e) => e[2])
    const table = await mesh.nextHopTableAsync()
    const sync = mesh.nextHopTable()
    t.deepEqual(Array.from(sync.nextHop), Array.from(table.nextHop))
    const num = (i: number) => Number(table.nodeIds[i].slice(1))
    t.is(table.size, n)
    for (let s = 0; s < n; s++) {
      const dist = mesh.distancesFrom(table.nodeIds[s])
      const routes = mesh.routesFrom(table.nodeIds[s])
      t.is(routes.length, lat[num(s)].filter((x, j) => x !== Infinity && j !== num(s)).length)
      for (let d = 0; d < n; d++) {
        const want = lat[num(s)][num(d)]
        t.is(dist.values[d], want)
        t.is(table.values[s * n + d], want)
        if (want === Infinity) {
          t.is(table.nextHop[s * n + d], 0xffffffff)
          continue
        }
        // Forward hop by hop through the table: total = shortest latency.
        let u = s
        let total = 0
        for (let steps = 0; u !== d; steps++) {
          const v = table.nextHop[u * n + d]
          total += edgeOf(edges, num(u), num(v))[2]
          u = v
          if (steps > n) throw new Error('loop')
        }
        t.is(total, want)
      }
    }
  }
})

test('stats: degree, components and diameters', async (t) => {
  const mesh = new SpaceMesh()
  for (const id of ['a', 'b', 'c', 'd', 'e']) mesh.addNode(new MeshNode({ nodeId: id, position: { latitude: 0, longitude: 0, altitudeKm: 550 } }))
  mesh.addLink('a', 'b', { bandwidthMbps: 1, latencyMs: 1 })
  mesh.addLink('b', 'c', { bandwidthMbps: 1, latencyMs: 1 })
  mesh.addLink('a', 'c', { bandwidthMbps: 1, latencyMs: 5 })
  mesh.addLink('d', 'e', { bandwidthMbps: 1, latencyMs: 7 })
  const s = mesh.stats()
  t.like(s, { nodes: 5, links: 4, linksUp: 4, minDegree: 1, maxDegree: 2, components: 2, largestComponent: 3, diameterHops: 1 })
  t.is(s.diameterLatencyMs, 7)
  t.is(s.meanDegree, 8 / 5)
  t.deepEqual(await mesh.statsAsync(), s)
})

// ---------------------------------------------------------------- CASES.md section E

test('CASES #20: two components give null and Infinity; the connected uplink is used', (t) => {
  const mesh = new SpaceMesh()
  for (let i = 0; i < 6; i++) mesh.addNode(new MeshNode({ nodeId: `${i}`, position: { latitude: 0, longitude: i, altitudeKm: 550 } }))
  for (const [a, b] of [['0', '1'], ['1', '2'], ['3', '4'], ['4', '5']]) mesh.addLink(a, b, { bandwidthMbps: 100, latencyMs: 5 })
  t.is(mesh.findRoute('0', '5') as MeshRoute | null, null)
  const d = mesh.distancesFrom('0')
  t.is(d.values[d.nodeIds.indexOf('5')], Infinity)
  t.is(d.values[d.nodeIds.indexOf('2')], 10)
  mesh.addNode(new MeshNode({ nodeId: 'gs', position: { latitude: 0, longitude: 0 }, nodeType: 'ground' }))
  mesh.addLink('gs', '1', { bandwidthMbps: 100, latencyMs: 2 }) // nearest, wrong component
  mesh.addLink('gs', '4', { bandwidthMbps: 100, latencyMs: 9 })
  t.deepEqual(mesh.findRoute('gs', '5')!.hops, ['gs', '4', '5'])
})

test('CASES #21: negative and NaN latencies are ERR_INVALID_WEIGHT; +Infinity is a link that is down', (t) => {
  const mesh = new SpaceMesh()
  for (const id of ['A', 'B', 'C']) mesh.addNode(new MeshNode({ nodeId: id, position: { latitude: 0, longitude: 0, altitudeKm: 550 } }))
  mesh.addLink('A', 'B', { bandwidthMbps: 100, latencyMs: 4 })
  mesh.addLink('A', 'C', { bandwidthMbps: 100, latencyMs: 2 })
  code(t, () => mesh.addLink('B', 'C', { bandwidthMbps: 100, latencyMs: -3 }), 'ERR_INVALID_WEIGHT', /latencyMs.*-3/)
  code(t, () => mesh.addLink('B', 'C', { bandwidthMbps: 100, latencyMs: NaN }), 'ERR_INVALID_WEIGHT', /latencyMs.*NaN/)
  mesh.addLink('B', 'C', { bandwidthMbps: 100, latencyMs: Infinity })
  const r = mesh.findRoute('A', 'C')!
  t.deepEqual(r.hops, ['A', 'C'])
  t.is(r.totalLatencyMs, 2)
  t.deepEqual(mesh.findRoute('B', 'C')!.hops, ['B', 'A', 'C'])
  for (const bw of [0, -5, NaN, Infinity]) code(t, () => mesh.updateLink('A', 'B', { bandwidthMbps: bw }), 'ERR_INVALID_WEIGHT', /bandwidthMbps/)
  code(t, () => mesh.addLink('A', 'B', {}), 'ERR_INVALID_ARG', /bandwidthMbps/)
})

test('CASES #22: no overflow, duplicate ids, self-loops, zero-latency links', (t) => {
  const mesh = new SpaceMesh()
  for (const id of ['0', '1', '2']) mesh.addNode(new MeshNode({ nodeId: id, position: { latitude: 0, longitude: 0, altitudeKm: 550 } }))
  mesh.addLink('0', '1', { bandwidthMbps: 1, latencyMs: 4_000_000_000 })
  mesh.addLink('1', '2', { bandwidthMbps: 1, latencyMs: 4_000_000_000 })
  t.is(mesh.findRoute('0', '2')!.totalLatencyMs, 8_000_000_000)
  mesh.updateLink('0', '1', { latencyMs: 3.4e38 })
  mesh.updateLink('1', '2', { latencyMs: 3.4e38 })
  t.is(mesh.findRoute('0', '2')!.totalLatencyMs, 6.8e38)
  mesh.updateLink('0', '1', { latencyMs: Number.MAX_VALUE })
  mesh.updateLink('1', '2', { latencyMs: Number.MAX_VALUE })
  t.is(mesh.findRoute('0', '2')!.totalLatencyMs, Number.MAX_VALUE) // saturates, still a route
  code(t, () => mesh.addNode(new MeshNode({ nodeId: '1', position: { latitude: 0, longitude: 0 } })), 'ERR_DUPLICATE_NODE', /'1'/)
  code(t, () => mesh.addLink('2', '2', { bandwidthMbps: 1, latencyMs: 1 }), 'ERR_INVALID_ARG', /self-link/)
  mesh.addLink('0', '2', { bandwidthMbps: 1, latencyMs: 0.0 })
  const r = mesh.findRoute('0', '2')!
  t.is(r.totalLatencyMs, 0)
  t.is(r.hopCount, 1)
})

test('unknown ids, bad options and editing', (t) => {
  const mesh = new SpaceMesh()
  mesh.addNode(new MeshNode({ nodeId: 'a', position: { latitude: 0, longitude: 0, altitudeKm: 550 } }))
  mesh.addNode(new MeshNode({ nodeId: 'b', position: { latitude: 0, longitude: 1, altitudeKm: 550 } }))
  code(t, () => mesh.findRoute('a', 'zz'), 'ERR_UNKNOWN_NODE', /zz/)
  code(t, () => mesh.addLink('zz', 'a', { bandwidthMbps: 1 }), 'ERR_UNKNOWN_NODE', /zz/)
  code(t, () => mesh.removeNode('zz'), 'ERR_UNKNOWN_NODE', /zz/)
  code(t, () => mesh.findRoute('a', 'b', { metric: 'cheapest' as any }), 'ERR_INVALID_ARG', /metric.*cheapest/)
  code(t, () => new MeshNode({ nodeId: '', position: { latitude: 0, longitude: 0 } }), 'ERR_INVALID_ARG', /nodeId/)
  code(t, () => new MeshNode({ nodeId: 'x', position: { latitude: 95, longitude: 0 } }), 'ERR_INVALID_ARG', /position.*latitude/)
  code(t, () => new MeshNode({ nodeId: 'x', position: { latitude: 0, longitude: 0 }, nodeType: 'balloon' as any }), 'ERR_INVALID_ARG', /nodeType/)
  mesh.addLink('a', 'b', { bandwidthMbps: 5, latencyMs: 1 })
  code(t, () => mesh.addLink('b', 'a', { bandwidthMbps: 5 }), 'ERR_INVALID_ARG', /already exists/)
  mesh.setLinkUp('a', 'b', false)
  t.is(mesh.findRoute('a', 'b') as MeshRoute | null, null)
  t.false(mesh.getLink('a', 'b')!.up)
  t.deepEqual(mesh.neighbors('a'), [])
  mesh.setLinkUp('a', 'b', true)
  t.deepEqual(mesh.findRoute('a', 'b')!.hops, ['a', 'b'])
  t.true(mesh.removeLink('a', 'b'))
  t.false(mesh.removeLink('a', 'b'))
  mesh.removeNode('b')
  t.false(mesh.hasNode('b'))
  t.deepEqual(mesh.nodeIds(), ['a'])
  t.deepEqual(mesh.findRoute('a', 'a')!.hops, ['a'])
})

// ---------------------------------------------------------------- constellations

const EPOCH = new Date('2026-01-01T00:00:00Z')

test('+Grid Walker shells: degree 4 away from the seam, seam rule, ids', (t) => {
  const delta = new SpaceMesh()
  const ids = delta.addWalkerShell({ planes: 12, satsPerPlane: 20, phasing: 5, altitudeKm: 550, inclinationDeg: 53, epoch: EPOCH })
  t.is(ids.length, 240)
  t.is(ids[21], 'sat-1-1')
  for (const id of ids) t.is(delta.neighbors(id).length, 4, id)
  // Cross-seam (delta): plane P−1 slot s links to plane 0 slot (s + F) mod S.
  t.true(delta.neighbors('sat-11-17').includes('sat-0-2'))
  const star = new SpaceMesh()
  star.addWalkerShell({ pattern: 'star', planes: 8, satsPerPlane: 11, altitudeKm: 780, inclinationDeg: 86.4, epoch: EPOCH, idPrefix: 'ir-' })
  for (let p = 0; p < 8; p++)
    for (let s = 0; s < 11; s++) t.is(star.neighbors(`ir-${p}-${s}`).length, p === 0 || p === 7 ? 3 : 4)
  t.is(star.stats().components, 1)
  code(t, () => star.addWalkerShell({ planes: 4, satsPerPlane: 4, phasing: 4, altitudeKm: 550, inclinationDeg: 53 }), 'ERR_INVALID_ARG', /phasing/)
  code(t, () => star.addWalkerShell({ planes: 4, satsPerPlane: 4, altitudeKm: 550, inclinationDeg: 53, epoch: new Date(NaN) }), 'ERR_INVALID_ARG', /epoch/)
})

test('line of sight: hand-worked limit of two satellites either side of the Earth', (t) => {
  // Two satellites at 550 km, θ apart on an equatorial orbit. The chord's lowest point is
  // at radius r·cos(θ/2); with the 80 km grazing margin it must exceed 6378.137 + 80 km,
  // so θ < 2·acos(6458.137 / 6928.137) = 42.45°. Beyond it (and at 180°: opposite sides
  // of the Earth) there is no link, whatever the range.
  const limit = (2 * Math.acos((6378.137 + 80) / (6378.137 + 550)) * 180) / Math.PI
  t.true(Math.abs(limit - 42.45) < 0.01)
  for (const [theta, linked] of [[40, true], [42.4, true], [42.5, false], [90, false], [180, false]] as const) {
    const mesh = new SpaceMesh({ rangeLinks: { maxRangeKm: 20000 } })
    for (const [id, m] of [['a', 0], ['b', theta]] as const)
      mesh.addSatellite({ nodeId: id, elements: { altitudeKm: 550, inclinationDeg: 0, meanAnomalyDeg: m, epoch: EPOCH } })
    mesh.updateTopology(EPOCH)
    t.is(mesh.getLink('a', 'b') !== null, linked, `θ = ${theta}`)
  }
})

test('ground-to-ground latency over a Walker shell lies between the straight line at c and 2× it', async (t) => {
  const mesh = new SpaceMesh()
  mesh.addWalkerShell({ planes: 22, satsPerPlane: 72, phasing: 17, altitudeKm: 550, inclinationDeg: 53, epoch: EPOCH })
  const nyc = { latitude: 40.71, longitude: -74.0, altitudeKm: 0 }
  const lon = { latitude: 51.5, longitude: -0.13, altitudeKm: 0 }
  mesh.addGroundStation({ nodeId: 'nyc', position: nyc })
  mesh.addGroundStation({ nodeId: 'lon', position: new Position(lon) })
  // Straight line through the Earth between the two WGS-84 points, written out here.
  const ecef = (p: { latitude: number; longitude: number; altitudeKm: number }) => {
    const a = 6378.137
    const f = 1 / 298.257223563
    const e2 = f * (2 - f)
    const la = (p.latitude * Math.PI) / 180
    const lo = (p.longitude * Math.PI) / 180
    const N = a / Math.sqrt(1 - e2 * Math.sin(la) ** 2)
    const h = p.altitudeKm
    return [(N + h) * Math.cos(la) * Math.cos(lo), (N + h) * Math.cos(la) * Math.sin(lo), (N * (1 - e2) + h) * Math.sin(la)]
  }
  const [p, q] = [ecef(nyc), ecef(lon)]
  const straightMs = (Math.hypot(p[0] - q[0], p[1] - q[1], p[2] - q[2]) / 299792.458) * 1000
  for (let k = 0; k < 6; k++) {
    await mesh.updateTopologyAsync(new Date(EPOCH.getTime() + k * 131_000))
    const r = mesh.findRoute('nyc', 'lon')!
    t.true(r.totalLatencyMs >= straightMs, `${r.totalLatencyMs} ≥ ${straightMs}`)
    t.true(r.totalLatencyMs <= 2 * straightMs, `${r.totalLatencyMs} ≤ 2 × ${straightMs}`)
    t.true(r.hops.slice(1, -1).every((h) => h.startsWith('sat-')), 'ground stations do not relay')
    // Every ground link respects the 25° mask: the first uplink's elevation, computed here.
    const sat3 = ecef(mesh.getNode(r.hops[1]).position)
    const la = (nyc.latitude * Math.PI) / 180
    const lo = (nyc.longitude * Math.PI) / 180
    const up = [Math.cos(la) * Math.cos(lo), Math.cos(la) * Math.sin(lo), Math.sin(la)]
    const d = sat3.map((x, i) => x - p[i])
    const el = (Math.asin((d[0] * up[0] + d[1] * up[1] + d[2] * up[2]) / Math.hypot(d[0], d[1], d[2])) * 180) / Math.PI
    t.true(el >= 25 - 1e-6, `uplink elevation ${el}`)
  }
  t.is(mesh.time!.getTime(), EPOCH.getTime() + 5 * 131_000)
})

test('routeSeries: path changes and latencies match step-by-step recomputation; the mesh is not moved', async (t) => {
  const mesh = new SpaceMesh()
  mesh.addWalkerShell({ planes: 12, satsPerPlane: 20, phasing: 5, altitudeKm: 550, inclinationDeg: 53, epoch: EPOCH })
  mesh.addGroundStation({ nodeId: 'a', position: { latitude: 10, longitude: 0 }, minElevationDeg: 10 })
  mesh.addGroundStation({ nodeId: 'b', position: { latitude: 30, longitude: 40 }, minElevationDeg: 10 })
  const series = mesh.routeSeries('a', 'b', { start: EPOCH, durationS: 600, stepS: 30 })
  const fractions: number[] = []
  t.deepEqual(await mesh.routeSeriesAsync('a', 'b', { start: EPOCH, durationS: 600, stepS: 30 }, (f) => fractions.push(f)), series)
  await new Promise((resolve) => setTimeout(resolve, 50)) // progress calls are queued to the event loop
  t.is(fractions.length, 21) // 21 samples: one call per 1 % rounds to one per sample
  t.true(fractions.every((f) => f > 0 && f <= 1))
  t.true(fractions.includes(1))
  t.is(series.timesMs.length, 21)
  t.is(mesh.time!.getTime(), EPOCH.getTime())
  let prev: string | undefined
  let c = 0
  for (let k = 0; k < 21; k++) {
    const copy = new SpaceMesh()
    copy.addWalkerShell({ planes: 12, satsPerPlane: 20, phasing: 5, altitudeKm: 550, inclinationDeg: 53, epoch: EPOCH })
    copy.addGroundStation({ nodeId: 'a', position: { latitude: 10, longitude: 0 }, minElevationDeg: 10 })
    copy.addGroundStation({ nodeId: 'b', position: { latitude: 30, longitude: 40 }, minElevationDeg: 10 })
    copy.updateTopology(new Date(EPOCH.getTime() + k * 30_000))
    const r = copy.findRoute('a', 'b')
    t.is(series.latencyMs[k], r ? r.totalLatencyMs : Infinity)
    t.is(series.hopCount[k], r ? r.hopCount : 0)
    const key = r ? r.hops.join() : 'none'
    if (key !== prev) {
      t.is(series.changes[c].index, k)
      t.is(series.changes[c].time.getTime(), EPOCH.getTime() + k * 30_000)
      t.is(series.changes[c].hops === null ? 'none' : series.changes[c].hops!.join(), key)
      c++
    }
    prev = key
  }
  t.is(series.changes.length, c)
  t.true(c >= 2)
  code(t, () => mesh.routeSeries('a', 'b', { start: new Date('nope'), durationS: 10 }), 'ERR_INVALID_ARG', /start/)
  code(t, () => mesh.routeSeries('a', 'b', { start: EPOCH, durationS: 10, stepS: 0 }), 'ERR_INVALID_ARG', /stepS/)
  code(t, () => mesh.routeSeries('a', 'zz', { start: EPOCH, durationS: 10 }), 'ERR_UNKNOWN_NODE', /zz/)
  await t.throwsAsync(mesh.routeSeriesAsync('a', 'zz', { start: EPOCH, durationS: 10 }), { code: 'ERR_UNKNOWN_NODE' } as any)
})

test('moving satellites: range links follow the geometry; updateTopology validates its Date', (t) => {
  const mesh = new SpaceMesh()
  mesh.setRangeLinks({ maxRangeKm: 2000, maxLinksPerSatellite: 2 })
  t.like(mesh.getRangeLinks(), { maxRangeKm: 2000, grazingMarginKm: 80, maxLinksPerSatellite: 2 })
  mesh.addWalkerShell({ planes: 6, satsPerPlane: 12, phasing: 1, altitudeKm: 1200, inclinationDeg: 60, links: 'range', epoch: EPOCH })
  mesh.updateTopology(new Date(EPOCH.getTime() + 60_000))
  const pos = new Map(mesh.nodeIds().map((id) => [id, mesh.getNode(id).position]))
  for (const l of mesh.links()) {
    t.true(l.distanceKm <= 2000)
    t.is(l.origin, 'isl')
    t.true(Math.abs(l.latencyMs - (l.distanceKm / 299792.458) * 1000) < 1e-9)
  }
  for (const id of pos.keys()) t.true(mesh.neighbors(id).length <= 2)
  code(t, () => mesh.updateTopology(new Date(NaN)), 'ERR_INVALID_ARG', /time/)
  code(t, () => mesh.updateTopology(12 as any), 'ERR_INVALID_ARG', /time.*Date/)
  code(t, () => mesh.addSatellite({ nodeId: 'x', elements: { altitudeKm: 500, eccentricity: 1.2, inclinationDeg: 0, epoch: EPOCH } }), 'ERR_INVALID_ARG', /eccentricity/)
  code(t, () => mesh.addGroundStation({ nodeId: 'g', position: { latitude: 0, longitude: 0 }, minElevationDeg: 95 }), 'ERR_INVALID_ARG', /minElevationDeg/)
  code(t, () => mesh.setRangeLinks({ maxRangeKm: -1 }), 'ERR_INVALID_ARG', /maxRangeKm/)
})
