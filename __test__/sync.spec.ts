import test from 'ava'
import { readFileSync } from 'node:fs'
import { Position as SdkPosition } from '@rotastellar/sdk'
import { SyncScheduler, GroundStation, Position, type SyncWindow } from '../index.js'

// ---------------------------------------------------------------- fixtures

const here = new URL('./fixtures/', import.meta.url)
const passes = JSON.parse(readFileSync(new URL('passes_public.json', here), 'utf8'))

/** The synthetic TLE sets of CASES.md (tle_fixtures.txt), by key. */
const FIX: Record<string, [string, string]> = {}
{
  const lines = readFileSync(new URL('tle_fixtures.txt', here), 'utf8').split('\n')
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].startsWith('# ')) FIX[lines[i].slice(2).split(' ')[0]] = [lines[i + 1], lines[i + 2]]
  }
}

const ms = (s: string) => Date.parse(s)
const station = (lat: number, lon: number, mask: number, name = 'S') =>
  new GroundStation({ name, position: { latitude: lat, longitude: lon, altitudeKm: 0 }, uplinkMbps: 10, downlinkMbps: 80, minElevationDeg: mask })

function windowsFor(key: string, lat: number, lon: number, mask: number, start: string, hours: number, extra: object = {}): SyncWindow[] {
  const s = new SyncScheduler({ groundStations: [station(lat, lon, mask)], ...extra })
  s.addSatellite({ satelliteId: key, tle: FIX[key] })
  return s.getSyncWindows({ satelliteId: key, durationHours: hours, startTime: new Date(start) })
}

// ---------------------------------------------------------------- Skyfield reference passes

test('every Skyfield reference pass is found: AOS/LOS within 1 s, max elevation within 0.05°, no extra passes, clipping flags', (t) => {
  let checked = 0
  let worstAosLos = 0
  let worstEl = 0
  for (const res of passes.results) {
    const sat = passes.satellites.find((s: any) => s.key === res.satellite)
    const st = passes.stations.find((s: any) => s.key === res.station)
    const t0 = ms(res.window_start)
    const t1 = ms(res.window_end)
    for (const m of res.masks) {
      const sched = new SyncScheduler({
        groundStations: [
          new GroundStation({
            name: st.key,
            position: new Position({ latitude: st.lat_deg, longitude: st.lon_deg, altitudeKm: st.alt_m / 1000 }),
            uplinkMbps: 1,
            downlinkMbps: 1,
            minElevationDeg: m.mask_deg,
          }),
        ],
        ut1MinusUtcSeconds: res.dut1_s_at_window_start,
      })
      sched.addSatellite({ satelliteId: sat.key, tle: [sat.line1, sat.line2] })
      const w = sched.getSyncWindows({ satelliteId: sat.key, durationHours: (t1 - t0) / 3.6e6, startTime: new Date(t0) })
      const where = `${sat.key} ${st.key} mask ${m.mask_deg}`
      t.is(w.length, m.passes.length, `${where}: pass count`)
      m.passes.forEach((p: any, i: number) => {
        const x = w[i]
        t.is(x.clippedStart, p.starts_before_window, `${where} #${i} clippedStart`)
        t.is(x.clippedEnd, p.ends_after_window, `${where} #${i} clippedEnd`)
        if (p.starts_before_window) t.is(x.startTime.getTime(), t0)
        else {
          const d = Math.abs(x.startTime.getTime() - ms(p.aos_refined)) / 1000
          worstAosLos = Math.max(worstAosLos, d)
          t.true(d <= 1, `${where} #${i} AOS off by ${d} s`)
        }
        if (p.ends_after_window) t.is(x.endTime.getTime(), t1)
        else {
          const d = Math.abs(x.endTime.getTime() - ms(p.los_refined)) / 1000
          worstAosLos = Math.max(worstAosLos, d)
          t.true(d <= 1, `${where} #${i} LOS off by ${d} s`)
        }
        // The reference's maximum is over in-window culminations; with none inside the
        // window the highest point of the clipped pass is at one of its ends.
        const refMax =
          p.max_elevation_deg_refined ??
          Math.max(p.starts_before_window ? m.elevation_at_window_start_deg : -90, p.ends_after_window ? m.elevation_at_window_end_deg : -90)
        const de = Math.abs(x.maxElevationDeg - refMax)
        worstEl = Math.max(worstEl, de)
        t.true(de <= 0.05, `${where} #${i} max elevation ${x.maxElevationDeg} vs ${refMax}`)
        t.true(x.startTime <= x.maxElevationTime && x.maxElevationTime <= x.endTime)
        checked++
      })
    }
  }
  t.is(checked, 60 + 54 + 45)
  t.log(`worst AOS/LOS difference ${worstAosLos.toFixed(3)} s, worst max-elevation difference ${worstEl.toFixed(5)}°`)
})

test('look angles match the Skyfield topocentric samples (0.01°, 0.05 km)', (t) => {
  const topo = JSON.parse(readFileSync(new URL('topocentric_public.json', here), 'utf8'))
  const sats = passes.satellites
  const sched = new SyncScheduler({
    groundStations: passes.stations.map(
      (s: any) => new GroundStation({ name: s.key, position: { latitude: s.lat_deg, longitude: s.lon_deg, altitudeKm: s.alt_m / 1000 }, uplinkMbps: 1, downlinkMbps: 1 }),
    ),
    ut1MinusUtcSeconds: passes.results[0].dut1_s_at_window_start,
  })
  for (const s of sats) sched.addSatellite({ satelliteId: s.key, tle: `${s.name}\n${s.line1}\n${s.line2}` })
  let n = 0
  for (const r of topo.results) {
    for (const x of r.samples) {
      const la = sched.getLookAngles({ satelliteId: r.satellite, station: r.station, time: new Date(x.time) })
      t.true(Math.abs(la.elevationDeg - x.elevation_deg) < 0.01, `${r.satellite} ${r.station} ${x.time} el`)
      t.true(Math.abs(la.rangeKm - x.range_km) < 0.05, `${r.satellite} ${r.station} ${x.time} range`)
      const daz = Math.abs(((la.azimuthDeg - x.azimuth_deg + 540) % 360) - 180)
      if (x.elevation_deg < 89) t.true(daz < 0.01, `${r.satellite} ${r.station} ${x.time} az`)
      n++
    }
  }
  t.is(n, 120)
})

// ---------------------------------------------------------------- hand-checkable geometry

test('station under a circular equatorial orbit: pass duration is 2·acos(R/a)/(n − ω⊕)', (t) => {
  const a = 6378.137 + 800
  const epoch = new Date('2024-01-01T00:00:00Z')
  const s = new SyncScheduler({ groundStations: [station(0, 0, 0, 'EQ')] })
  s.addSatellite({ satelliteId: 'eq', kepler: { semiMajorAxisKm: a, inclinationDeg: 0, epoch } })
  const w = s.getSyncWindows({ satelliteId: 'eq', durationHours: 24, startTime: epoch })
  const mu = 398600.8 // WGS72, as SGP4
  const n = Math.sqrt(mu / a ** 3)
  const expected = (2 * Math.acos(6378.137 / a)) / (n - 7.292115e-5)
  const full = w.filter((x) => !x.clippedStart && !x.clippedEnd)
  t.true(full.length >= 10)
  for (const x of full) {
    t.true(Math.abs(x.durationSeconds - expected) / expected < 0.01, `${x.durationSeconds} vs ${expected}`)
    t.true(x.maxElevationDeg > 89.5)
    // Capacity: 80 Mbps × duration ÷ 8 = 10 MB/s.
    t.true(Math.abs(x.dataCapacityMb - 10 * x.durationSeconds) < 1e-6)
    t.true(Math.abs(x.uplinkCapacityMb - 1.25 * x.durationSeconds) < 1e-6)
  }
})

// ---------------------------------------------------------------- CASES.md, section B and A.1

test('CASES 1: decay is sticky; no windows after decay; states after it throw ERR_DECAYED', (t) => {
  const s = new SyncScheduler({ groundStations: [station(0, 0, 10)] })
  s.addSatellite({ satelliteId: 'd', tle: FIX.DECAYER })
  const epoch = ms('2024-01-01T00:00:00Z')
  const day = 86400e3
  t.notThrows(() => s.getSatelliteState({ satelliteId: 'd', time: new Date(epoch + 5 * day) }))
  for (const d of [11, 39, 900]) {
    const e = t.throws(() => s.getSatelliteState({ satelliteId: 'd', time: new Date(epoch + d * day) })) as any
    t.true(['ERR_DECAYED', 'ERR_IMPLAUSIBLE_STATE'].includes(e.code), `day ${d}: ${e.code}`)
  }
  const w = s.getSyncWindows({ satelliteId: 'd', durationHours: 60 * 24, startTime: new Date(epoch) })
  t.true(w.length > 0)
  const last = w[w.length - 1].endTime.getTime()
  t.true(last < epoch + 11 * day, `last window ends ${new Date(last).toISOString()}`)
  // A request wholly after the decay is an error, not an empty list.
  const e = t.throws(() => s.getSyncWindows({ satelliteId: 'd', durationHours: 24, startTime: new Date(epoch + 39 * day) })) as any
  t.is(e.code, 'ERR_DECAYED')
})

test('CASES 6: a request starting or ending mid-pass gives one clipped window', (t) => {
  const all = windowsFor('LEO_REF', 0, 0, 0, '2024-01-01T12:00:00Z', 24)
  const p = all.find((x) => !x.clippedStart && !x.clippedEnd && x.durationSeconds > 300)!
  const pm = p.maxElevationTime.getTime()
  const a = windowsFor('LEO_REF', 0, 0, 0, new Date(pm + 60e3).toISOString(), (p.endTime.getTime() + 600e3 - pm - 60e3) / 3.6e6)
  t.is(a.length, 1)
  t.true(a[0].clippedStart && !a[0].clippedEnd)
  t.is(a[0].startTime.getTime(), pm + 60e3)
  t.true(Math.abs(a[0].endTime.getTime() - p.endTime.getTime()) < 1000)
  const b0 = p.startTime.getTime() - 600e3
  const b = windowsFor('LEO_REF', 0, 0, 0, new Date(b0).toISOString(), (pm - 60e3 - b0) / 3.6e6)
  t.is(b.length, 1)
  t.true(!b[0].clippedStart && b[0].clippedEnd)
  t.is(b[0].endTime.getTime(), pm - 60e3)
})

test('CASES 7: mask 70° finds both ~40 s passes, edges at 70° ± 0.01°, independent of the step floor', (t) => {
  const ref = windowsFor('SSO_LEO', 60, 20, 70, '2024-01-01T00:00:00Z', 168)
  t.is(ref.length, 2)
  t.true(Math.abs(ref[0].startTime.getTime() - ms('2024-01-03T04:24:00Z')) < 120e3)
  t.true(Math.abs(ref[1].startTime.getTime() - ms('2024-01-05T18:16:00Z')) < 120e3)
  const s = new SyncScheduler({ groundStations: [station(60, 20, 70)] })
  s.addSatellite({ satelliteId: 'x', tle: FIX.SSO_LEO })
  for (const w of ref) {
    t.true(w.durationSeconds > 20 && w.durationSeconds < 60)
    t.true(w.startTime < w.maxElevationTime && w.maxElevationTime < w.endTime)
    for (const tt of [w.startTime, w.endTime]) {
      const el = s.getLookAngles({ satelliteId: 'x', station: 0, time: tt }).elevationDeg
      t.true(Math.abs(el - 70) < 0.01, `elevation at edge ${el}`)
    }
  }
  for (const step of [1, 3, 10]) {
    const w = windowsFor('SSO_LEO', 60, 20, 70, '2024-01-01T00:00:00Z', 168, { minStepSeconds: step })
    t.is(w.length, 2)
    w.forEach((x, i) => t.true(Math.abs(x.startTime.getTime() - ref[i].startTime.getTime()) < 5))
  }
})

test('CASES 8: Molniya passes lasting hours are closed, disjoint and stable under a ±1 s shift', (t) => {
  const counts: number[] = []
  for (const shift of [-1000, 0, 1000]) {
    const w = windowsFor('MOLNIYA-like', 53, 5, 0, new Date(ms('2024-01-01T00:00:00Z') + shift).toISOString(), 48)
    counts.push(w.length)
    for (let i = 0; i < w.length; i++) {
      t.true(w[i].endTime > w[i].startTime)
      t.true(w[i].durationSeconds > 590 * 60 && w[i].durationSeconds < 625 * 60, `${w[i].durationSeconds / 60} min`)
      t.true(w[i].maxElevationDeg > 36 && w[i].maxElevationDeg < 43)
      if (i > 0) t.true(w[i].startTime >= w[i - 1].endTime)
    }
  }
  t.deepEqual(counts, [4, 4, 4])
})

test('CASES 10: GEO always visible is one clipped window; never visible is fast and empty; marginal pass does not throw', (t) => {
  const all = windowsFor('GEO', 0, 155, 10, '2024-01-01T00:00:00Z', 24)
  t.is(all.length, 1)
  t.true(all[0].clippedStart && all[0].clippedEnd)
  t.is(all[0].durationSeconds, 86400)
  const t0 = performance.now()
  const none = windowsFor('GEO', 85, 155, 0, '2024-01-01T00:00:00Z', 24)
  t.true(performance.now() - t0 < 50)
  t.is(none.length, 0)
  t.is(windowsFor('GEO', 80, 155, 0, '2024-01-01T00:00:00Z', 24).length, 1)
  const p = windowsFor('LEO_REF', 0, 0, 0, '2024-01-01T12:00:00Z', 24).find((x) => !x.clippedStart && !x.clippedEnd)!
  const mask = p.maxElevationDeg - 0.001
  const w1 = windowsFor('LEO_REF', 0, 0, mask, '2024-01-01T12:00:00Z', 24)
  const w2 = windowsFor('LEO_REF', 0, 0, mask, '2024-01-01T12:00:00Z', 24)
  t.deepEqual(w1, w2)
  t.true(w1.length <= 1 + windowsFor('LEO_REF', 0, 0, mask - 1, '2024-01-01T12:00:00Z', 24).length)
})

test('CASES 11: pole and date line give finite angles; 180° and −180° agree', (t) => {
  const pole = windowsFor('SSO_LEO', 90, 0, 10, '2024-01-01T00:00:00Z', 12)
  t.is(pole.length, 8)
  for (const w of pole) {
    t.true(Math.abs(w.durationSeconds / 60 - 6.3) < 0.3)
    t.true(Math.abs(w.maxElevationDeg - 26.5) < 0.2)
  }
  t.is(windowsFor('LEO_REF', 89.9, 0, 0, '2024-01-01T12:00:00Z', 24).length, 0)
  const e = windowsFor('LEO_REF', 0, 180, 0, '2024-01-01T12:00:00Z', 24)
  const w = windowsFor('LEO_REF', 0, -180, 0, '2024-01-01T12:00:00Z', 24)
  t.is(e.length, w.length)
  e.forEach((x, i) => {
    t.true(Math.abs(x.startTime.getTime() - w[i].startTime.getTime()) <= 1)
    t.true(Number.isFinite(x.maxElevationDeg))
  })
  // A satellite at its culmination over a station: elevation finite and ≤ 90, azimuth finite.
  const s = new SyncScheduler({ groundStations: [station(0, 180, 0)] })
  s.addSatellite({ satelliteId: 'x', tle: FIX.LEO_REF })
  const top = e.reduce((a, b) => (a.maxElevationDeg > b.maxElevationDeg ? a : b))
  const la = s.getLookAngles({ satelliteId: 'x', station: 0, time: top.maxElevationTime })
  t.true(Number.isFinite(la.azimuthDeg) && la.elevationDeg <= 90 && Number.isFinite(la.elevationDeg))
})

// ---------------------------------------------------------------- API and bad input

test('README example runs as written (unregistered id uses the default orbit; sdk Position accepted)', (t) => {
  const stations = [
    new GroundStation({
      name: 'KSC',
      // The README passes an options object to @rotastellar/sdk's positional constructor.
      position: new (SdkPosition as any)({ latitude: 28.5729, longitude: -80.649, altitudeKm: 0.0 }),
      uplinkMbps: 100.0,
      downlinkMbps: 200.0,
    }),
    new GroundStation({ name: 'Svalbard', position: new Position({ latitude: 78.2297, longitude: 15.3975, altitudeKm: 0.0 }), uplinkMbps: 150.0, downlinkMbps: 300.0 }),
  ]
  const scheduler = new SyncScheduler({ groundStations: stations })
  const windows = scheduler.getSyncWindows({ satelliteId: 'sat-001', durationHours: 24 })
  t.true(windows.length > 0)
  for (let i = 1; i < windows.length; i++) t.true(windows[i].startTime >= windows[i - 1].startTime)
  for (const w of windows) {
    t.true(['KSC', 'Svalbard'].includes(w.station.name))
    t.is(w.dataCapacityMb, (w.station.downlinkMbps * w.durationSeconds) / 8)
    t.true(w.endTime.getTime() - w.startTime.getTime() <= 24 * 3.6e6)
  }
  t.is(scheduler.getOrbitInfo('sat-001').source, 'default')
  t.deepEqual(
    GroundStation.defaultNetwork().map((s) => s.name),
    ['Svalbard', 'Kourou', 'Perth', 'Fairbanks'],
  )
  t.is(GroundStation.svalbard().position.latitude, 78.2297)
})

test('constellation: parallel result equals per-satellite results; async with progress', async (t) => {
  const s = new SyncScheduler({ groundStations: [GroundStation.svalbard(), GroundStation.kourou(), station(28.5, -80.6, 5)] })
  for (const k of ['LEO_REF', 'SSO_LEO', 'GEO', 'MOLNIYA-like']) s.addSatellite({ satelliteId: k, tle: FIX[k] })
  s.addSatellite({ satelliteId: 'DEC', tle: FIX.DECAYER.join('\n') })
  const opts = { durationHours: 24, startTime: new Date('2024-01-20T00:00:00Z') }
  const all = s.getConstellationWindows(opts)
  t.deepEqual(all.failures.map((f) => [f.satelliteId, f.code]), [['DEC', 'ERR_DECAYED']])
  for (const k of ['LEO_REF', 'SSO_LEO', 'GEO', 'MOLNIYA-like']) {
    t.deepEqual(all.windows.filter((w) => w.satelliteId === k), s.getSyncWindows({ satelliteId: k, ...opts }))
  }
  for (let i = 1; i < all.windows.length; i++) t.true(all.windows[i].startTime >= all.windows[i - 1].startTime)
  const seen: number[] = []
  const a = await s.getConstellationWindowsAsync({ ...opts, satelliteIds: ['LEO_REF', 'GEO'] }, (f) => seen.push(f))
  t.deepEqual(a.windows, all.windows.filter((w) => w.satelliteId === 'LEO_REF' || w.satelliteId === 'GEO'))
  await new Promise((r) => setTimeout(r, 20))
  t.true(seen.length >= 1 && seen.every((f) => f > 0 && f <= 1))
  t.deepEqual(await s.getSyncWindowsAsync({ satelliteId: 'GEO', ...opts }), s.getSyncWindows({ satelliteId: 'GEO', ...opts }))
  await t.throwsAsync(s.getSyncWindowsAsync({ satelliteId: 'DEC', ...opts }), { code: 'ERR_DECAYED' } as any)
})

test('OMM and Kepler forms agree with the TLE they describe', (t) => {
  const s = new SyncScheduler({ groundStations: [station(0, 0, 0)] })
  s.addSatellite({ satelliteId: 'tle', tle: FIX.LEO_REF })
  s.addSatellite({
    satelliteId: 'omm',
    omm: {
      OBJECT_NAME: 'LEO REF', NORAD_CAT_ID: 90001, EPOCH: '2024-01-01T12:00:00.000000', MEAN_MOTION: 15.5, ECCENTRICITY: 0.0006703,
      INCLINATION: 51.6416, RA_OF_ASC_NODE: 247.4627, ARG_OF_PERICENTER: 130.536, MEAN_ANOMALY: 325.0288, BSTAR: 0.0001027,
      MEAN_MOTION_DOT: 0.00016717, MEAN_MOTION_DDOT: 0,
    },
  })
  const time = new Date('2024-01-02T00:00:00Z')
  const a = s.getSatelliteState({ satelliteId: 'tle', time })
  const b = s.getSatelliteState({ satelliteId: 'omm', time })
  for (let i = 0; i < 3; i++) t.true(Math.abs(a.temePositionKm[i] - b.temePositionKm[i]) < 1e-6)
  t.is(s.getOrbitInfo('omm').source, 'omm')
  s.addSatellite({ satelliteId: 'k', kepler: { altitudeKm: 700, inclinationDeg: 98, epoch: time } })
  const k = s.getSatelliteState({ satelliteId: 'k', time })
  t.true(Math.abs(k.altitudeKm - 700) < 30)
  t.false(k.outsideValidityWindow)
  t.true(s.getSatelliteState({ satelliteId: 'k', time: new Date(time.getTime() + 40 * 86400e3) }).outsideValidityWindow)
})

test('bad input: codes and messages name the argument and the value', (t) => {
  const code = (f: () => unknown, c: string, re?: RegExp) => {
    const e = t.throws(f) as any
    t.is(e.code, c, e.message)
    if (re) t.regex(e.message, re)
  }
  const pos = { latitude: 0, longitude: 0, altitudeKm: 0 }
  code(() => new GroundStation({ name: 'x', position: { latitude: 91, longitude: 0 }, uplinkMbps: 1, downlinkMbps: 1 }), 'ERR_INVALID_ARG', /latitude.*91/)
  code(() => new GroundStation({ name: 'x', position: { latitude: 0, longitude: 400 }, uplinkMbps: 1, downlinkMbps: 1 }), 'ERR_INVALID_ARG', /longitude.*400/)
  code(() => new GroundStation({ name: 'x', position: pos, uplinkMbps: -1, downlinkMbps: 1 }), 'ERR_INVALID_ARG', /uplinkMbps.*-1/)
  code(() => new GroundStation({ name: 'x', position: pos, uplinkMbps: 1, downlinkMbps: -5 }), 'ERR_INVALID_ARG', /downlinkMbps.*-5/)
  code(() => new GroundStation({ name: 'x', position: pos, uplinkMbps: 1, downlinkMbps: 1, minElevationDeg: 95 }), 'ERR_INVALID_ARG', /minElevationDeg.*95/)
  const s = new SyncScheduler({ groundStations: [station(0, 0, 0)] })
  const [l1, l2] = FIX.LEO_REF
  code(() => s.addSatellite({ satelliteId: 'a', tle: [l1.slice(0, 68) + '5', l2] }), 'ERR_INVALID_TLE', /line 1 checksum/)
  code(() => s.addSatellite({ satelliteId: 'a', tle: [l1.slice(0, 60), l2] }), 'ERR_INVALID_TLE', /line 1 must be 69 characters/)
  code(() => s.addSatellite({ satelliteId: 'a', tle: [l1] }), 'ERR_INVALID_TLE', /got 1/)
  code(() => s.addSatellite({ satelliteId: 'a', tle: 42 as any }), 'ERR_INVALID_TLE', /string or an array/)
  // Non-numeric inclination with a recomputed (valid) checksum.
  const bad = l2.slice(0, 8) + ' 51.6x16' + l2.slice(16, 68)
  const sum = [...bad].reduce((a, c) => a + (c === '-' ? 1 : /\d/.test(c) ? +c : 0), 0) % 10
  code(() => s.addSatellite({ satelliteId: 'a', tle: [l1, bad + sum] }), 'ERR_INVALID_TLE', /line 2 columns 9-16/)
  s.addSatellite({ satelliteId: 'a', tle: FIX.LEO_REF })
  code(() => s.addSatellite({ satelliteId: 'a', tle: FIX.LEO_REF }), 'ERR_DUPLICATE_NODE')
  t.notThrows(() => s.addSatellite({ satelliteId: 'a', tle: FIX.SSO_LEO, replace: true }))
  code(() => s.getSyncWindows({ satelliteId: 'a', durationHours: 0 }), 'ERR_INVALID_ARG', /durationHours.*got 0/)
  code(() => s.getSyncWindows({ satelliteId: 'a', durationHours: -3 }), 'ERR_INVALID_ARG', /durationHours.*-3/)
  code(() => s.getSyncWindows({ satelliteId: 'a', durationHours: 1e6 }), 'ERR_INVALID_ARG', /durationHours.*8784/)
  code(() => s.getSyncWindows({ satelliteId: 'a', durationHours: NaN }), 'ERR_INVALID_ARG', /durationHours/)
  code(() => s.getSyncWindows({ satelliteId: 'a', durationHours: 1, startTime: new Date('nope') }), 'ERR_INVALID_ARG', /startTime is an invalid Date/)
  code(() => s.getSyncWindows({ satelliteId: 'a', durationHours: 1, startTime: 5 as any }), 'ERR_INVALID_ARG', /startTime must be a Date/)
  code(() => new SyncScheduler({ capacityModel: 'magic' as any }), 'ERR_INVALID_ARG', /capacityModel.*magic/)
  code(() => s.addSatellite({ satelliteId: 'k', kepler: { semiMajorAxisKm: 6000, inclinationDeg: 10, epoch: new Date() } }), 'ERR_INVALID_ARG', /inside the Earth/)
})

test('link-budget capacity model: never above the constant model, equal when the range stays short', (t) => {
  const mk = (capacityModel: 'constant' | 'linkBudget', referenceRangeKm?: number) => {
    const s = new SyncScheduler({ groundStations: [station(0, 0, 10)], capacityModel, referenceRangeKm })
    s.addSatellite({ satelliteId: 'x', tle: FIX.LEO_REF })
    return s.getSyncWindows({ satelliteId: 'x', durationHours: 24, startTime: new Date('2024-01-01T12:00:00Z') })
  }
  const c = mk('constant')
  const l = mk('linkBudget', 1000)
  const big = mk('linkBudget', 1e6)
  t.is(c.length, l.length)
  c.forEach((w, i) => {
    t.true(l[i].dataCapacityMb <= w.dataCapacityMb + 1e-9)
    t.true(l[i].dataCapacityMb > 0)
    t.true(Math.abs(big[i].dataCapacityMb - w.dataCapacityMb) < 1e-6 * w.dataCapacityMb)
  })
})

test('mesh addSatellite accepts a TLE: its position is the SGP4 sub-satellite point at the mesh time', async (t) => {
  const { SpaceMesh } = await import('../index.js')
  const mesh = new SpaceMesh()
  const time = new Date('2024-01-01T13:00:00Z')
  t.throws(() => mesh.addSatellite({ nodeId: 'x', tle: FIX.LEO_REF }), { code: 'ERR_INVALID_ARG' } as any)
  mesh.updateTopology(time)
  mesh.addSatellite({ nodeId: 'x', tle: FIX.LEO_REF, links: 'none' })
  const s = new SyncScheduler({ groundStations: [station(0, 0, 0)] })
  s.addSatellite({ satelliteId: 'x', tle: FIX.LEO_REF })
  const st = s.getSatelliteState({ satelliteId: 'x', time })
  const p = mesh.getNode('x').position
  t.true(Math.abs(p.latitude - st.latitude) < 1e-6 && Math.abs(p.altitudeKm - st.altitudeKm) < 1e-6)
  t.true(Math.abs(((p.longitude - st.longitude + 540) % 360) - 180) < 1e-6)
  t.throws(() => mesh.addSatellite({ nodeId: 'y', tle: [FIX.LEO_REF[0]] }), { code: 'ERR_INVALID_TLE' } as any)
})
