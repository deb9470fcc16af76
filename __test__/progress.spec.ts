// An onProgress callback that throws must not end the process: the exception is dropped
// and the computation resolves. Run in a child process so that a fatal exception would
// show as a non-zero exit instead of killing the test runner.
import test from 'ava'
import { spawnSync } from 'node:child_process'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

const script = `
const { SyncScheduler, GroundStation, SpaceMesh, MeshNode, Position } = require(${JSON.stringify(path.join(root, 'index.js'))})
;(async () => {
  const s = new SyncScheduler({ groundStations: GroundStation.defaultNetwork() })
  for (let i = 0; i < 8; i++) s.addSatellite({ satelliteId: 's' + i, kepler: { semiMajorAxisKm: 6928, inclinationDeg: 53, raanDeg: i * 40, epoch: new Date('2026-01-01') } })
  let calls = 0
  const r = await s.getConstellationWindowsAsync({ durationHours: 24, startTime: new Date('2026-01-01') }, () => { calls++; throw new Error('boom') })
  const m = new SpaceMesh()
  const p = (lat) => new Position({ latitude: lat, longitude: 0, altitudeKm: 550 })
  m.addNode(new MeshNode({ nodeId: 'a', position: p(0) }))
  m.addNode(new MeshNode({ nodeId: 'b', position: p(1) }))
  m.addLink('a', 'b', { bandwidthMbps: 10 })
  const rs = await m.routeSeriesAsync('a', 'b', { start: new Date('2026-01-01'), durationS: 600 }, () => { throw new Error('boom') })
  await new Promise((done) => setTimeout(done, 200))
  console.log(JSON.stringify({ windows: r.windows.length, calls, samples: rs.latencyMs.length }))
})()
`

test('a throwing onProgress callback is dropped; both async calls resolve and the process lives', (t) => {
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60_000 })
  t.is(r.status, 0, r.stderr)
  const out = JSON.parse(r.stdout.trim())
  t.true(out.windows > 0)
  t.true(out.calls > 0)
  // 600 s at the default 1 s step, both ends included.
  t.is(out.samples, 601)
})
