import test from 'ava'
import {
  TransferPlanner,
  TransferPriority,
  TransferDirection,
  type PlannerWindow,
  type TransferPlan,
  type TransferPlannerOptions,
} from '../index.js'

// ---------------------------------------------------------------- helpers written here

/** mulberry32, seeded, so property tests are reproducible. */
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

const T0 = Date.UTC(2026, 0, 1)
const at = (s: number) => new Date(T0 + s * 1000)
const sec = (d: Date) => (d.getTime() - T0) / 1000

/** A window object as SyncScheduler.getSyncWindows will return it (station is an object). */
function win(sat: string, station: string, a: number, b: number, down: number, up = 0) {
  return {
    satelliteId: sat,
    station: { name: station, downlinkMbps: 100 },
    startTime: at(a),
    endTime: at(b),
    durationSeconds: b - a,
    maxElevationDeg: 45,
    dataCapacityMb: down,
    uplinkCapacityMb: up,
    clippedStart: false,
    clippedEnd: false,
  }
}

const code = (fn: () => unknown) => {
  try {
    fn()
  } catch (e) {
    return { code: (e as { code: string }).code, message: (e as Error).message }
  }
  return { code: 'NO_THROW', message: '' }
}

const pieces = (p: TransferPlan, id: string) =>
  p.placements.filter((x) => x.transferId === id).map((x) => [x.windowIndex, sec(x.startTime), sec(x.endTime), x.sizeMb])

// ---------------------------------------------------------------- enums and queue

test('enums have lower-case string values', (t) => {
  t.deepEqual(
    [TransferPriority.CRITICAL, TransferPriority.HIGH, TransferPriority.NORMAL, TransferPriority.LOW],
    ['critical', 'high', 'normal', 'low'],
  )
  t.is(TransferDirection.UPLINK as string, 'uplink')
  t.is(TransferDirection.DOWNLINK as string, 'downlink')
})

test('queue: enqueue, peek, pop, remove, pending, clear', (t) => {
  const q = new TransferPlanner()
  t.true(q.isEmpty())
  t.is(q.peek(), null)
  const a = q.enqueue({ satelliteId: 's', sizeMb: 10 })
  const b = q.enqueue({ satelliteId: 's', sizeMb: 20, priority: TransferPriority.HIGH, deadline: at(100) })
  const c = q.enqueue({ satelliteId: 's', sizeMb: 5, priority: TransferPriority.HIGH, deadline: at(50), description: 'logs' })
  const d = q.enqueue({ transferId: 'mine', satelliteId: 's', sizeMb: 1, priority: TransferPriority.LOW, direction: TransferDirection.UPLINK })
  t.deepEqual([a, b, c, d], ['transfer-1', 'transfer-2', 'transfer-3', 'mine'])
  t.is(q.size, 4)
  t.is(q.pendingMb, 36)
  // Planning order: HIGH (deadline 50 before 100), NORMAL, LOW.
  t.deepEqual(q.pending().map((x) => x.transferId), [c, b, a, d])
  const top = q.peek()!
  t.is(top.transferId, c)
  t.is(top.description, 'logs')
  t.is(top.deadline!.getTime(), at(50).getTime())
  t.is(top.splittable, true)
  t.is(top.direction, TransferDirection.DOWNLINK)
  t.is(q.pending()[3].direction, TransferDirection.UPLINK)
  t.is(q.pending()[2].deadline, undefined)
  t.is(q.pop()!.transferId, c)
  t.true(q.remove(a))
  t.false(q.remove(a))
  t.deepEqual(q.pending().map((x) => x.transferId), [b, d])
  t.is(code(() => q.enqueue({ transferId: 'mine', satelliteId: 's', sizeMb: 1 })).code, 'ERR_DUPLICATE_TRANSFER')
  // A removed id may be reused; automatic ids never collide with given ones.
  q.enqueue({ transferId: 'transfer-4', satelliteId: 's', sizeMb: 1 })
  t.is(q.enqueue({ satelliteId: 's', sizeMb: 1 }), 'transfer-5')
  q.enqueue({ transferId: a, satelliteId: 's', sizeMb: 1 })
  q.clear()
  t.is(q.size, 0)
  t.is(q.pendingMb, 0)
})

test('takeForCapacity: first-fit in planning order, like the peer getTasksForWindow', (t) => {
  const q = new TransferPlanner()
  q.enqueue({ transferId: 'n40', satelliteId: 's', sizeMb: 40 })
  q.enqueue({ transferId: 'c70', satelliteId: 's', sizeMb: 70, priority: TransferPriority.CRITICAL })
  q.enqueue({ transferId: 'h20', satelliteId: 's', sizeMb: 20, priority: TransferPriority.HIGH })
  q.enqueue({ transferId: 'l10', satelliteId: 's', sizeMb: 10, priority: TransferPriority.LOW })
  // 100 MB: c70 (30 left), h20 (10 left), n40 does not fit, l10 fits.
  t.deepEqual(q.takeForCapacity(100).map((x) => x.transferId), ['c70', 'h20', 'l10'])
  t.deepEqual(q.pending().map((x) => x.transferId), ['n40'])
  t.is(code(() => q.takeForCapacity(-1)).code, 'ERR_INVALID_ARG')
})

test('bad input: coded errors naming the argument and value', (t) => {
  const q = new TransferPlanner()
  const bad: Array<[Record<string, unknown>, string]> = [
    [{ satelliteId: 's', sizeMb: -3 }, 'transfer.sizeMb'],
    [{ satelliteId: 's', sizeMb: NaN }, 'transfer.sizeMb'],
    [{ satelliteId: 's', sizeMb: 0 }, 'transfer.sizeMb'],
    [{ satelliteId: 's', sizeMb: 1, priority: 'urgent' }, "'urgent'"],
    [{ satelliteId: 's', sizeMb: 1, direction: 'sideways' }, "'sideways'"],
    [{ satelliteId: 's', sizeMb: 1, deadline: new Date(NaN) }, 'transfer.deadline'],
    [{ satelliteId: 's', sizeMb: 1, deadline: 12345 }, 'transfer.deadline'],
    [{ sizeMb: 1 }, 'transfer.satelliteId'],
    [{ satelliteId: 's', sizeMb: '1' }, 'transfer.sizeMb'],
  ]
  for (const [o, what] of bad) {
    const e = code(() => q.enqueue(o as never))
    t.is(e.code, 'ERR_INVALID_ARG', JSON.stringify(o))
    t.true(e.message.includes(what), e.message)
  }
  t.true(code(() => q.enqueue({ satelliteId: 's', sizeMb: -3 })).message.includes('-3'))
  t.is(q.size, 0)
  q.enqueue({ satelliteId: 's', sizeMb: 1 })
  const badWindows: Array<[unknown, string]> = [
    [{ ...win('s', 'g', 10, 5, 1) }, 'windows[0].endTime'],
    [{ ...win('s', 'g', 0, 5, -1) }, 'windows[0].dataCapacityMb'],
    [{ ...win('s', 'g', 0, 5, 1, -2) }, 'windows[0].uplinkCapacityMb'],
    [{ ...win('s', 'g', 0, 5, 1), startTime: new Date('nope') }, 'windows[0].startTime'],
    [{ ...win('s', 'g', 0, 5, 1), satelliteId: undefined }, 'windows[0].satelliteId'],
    [{ ...win('s', 'g', 0, 5, 1), station: {} }, 'windows[0].station.name'],
    [{ ...win('s', 'g', 0, 5, 1), dataCapacityMb: undefined }, 'windows[0].dataCapacityMb'],
    // A valid JS Date (year ~271,000) that no result Date can carry.
    [{ ...win('s', 'g', 0, 5, 1), startTime: new Date(8.5e15), endTime: new Date(8.5e15 + 5000) }, 'windows[0].startTime'],
  ]
  for (const [w, what] of badWindows) {
    const e = code(() => q.plan([w as PlannerWindow]))
    t.is(e.code, 'ERR_INVALID_ARG', what)
    t.true(e.message.includes(what), e.message)
  }
  t.is(code(() => q.plan('no' as never)).code, 'ERR_INVALID_ARG')
  t.is(code(() => q.plan([], { startTime: at(10), endTime: at(5) })).code, 'ERR_INVALID_ARG')
  t.is(code(() => q.plan([], { endTime: new Date(NaN) })).code, 'ERR_INVALID_ARG')
  for (const o of [{ antennasPerStation: 0 }, { antennasPerStation: 1.5 }, { stationAntennas: { g: -1 } }]) {
    const e = code(() => new TransferPlanner(o as TransferPlannerOptions))
    t.is(e.code, 'ERR_INVALID_ARG')
  }
})

// ---------------------------------------------------------------- hand-worked plans

test('hand case: priority first, then split across passes, reasons', (t) => {
  const q = new TransferPlanner()
  // Two passes of sat-a at 1 MB/s: [0, 60] and [100, 160].
  const w = [win('sat-a', 'svalbard', 0, 60, 60), win('sat-a', 'svalbard', 100, 160, 60)]
  q.enqueue({ transferId: 'low', satelliteId: 'sat-a', sizeMb: 50, priority: TransferPriority.LOW })
  q.enqueue({ transferId: 'crit', satelliteId: 'sat-a', sizeMb: 40, priority: TransferPriority.CRITICAL })
  q.enqueue({ transferId: 'img', satelliteId: 'sat-a', sizeMb: 45, splittable: false })
  q.enqueue({ transferId: 'lost', satelliteId: 'sat-z', sizeMb: 1 })
  q.enqueue({ transferId: 'late', satelliteId: 'sat-a', sizeMb: 1, deadline: at(-10) })
  const p = q.plan(w)
  // crit takes [0, 40]; img (unsplittable, 45) cannot use the 20 s left: [100, 145];
  // low takes [40, 60] + [145, 160] = 35 MB < 50: not placed, room taken by those ahead.
  t.deepEqual(pieces(p, 'crit'), [[0, 0, 40, 40]])
  t.deepEqual(pieces(p, 'img'), [[1, 100, 145, 45]])
  t.deepEqual(pieces(p, 'low'), [])
  const reasons = Object.fromEntries(p.unplaced.map((u) => [u.transferId, u.code]))
  t.deepEqual(reasons, { low: 'CAPACITY_TAKEN', lost: 'NO_WINDOW', late: 'DEADLINE_PASSED' })
  t.is(p.placements[0].station, 'svalbard')
  t.is(p.summary.placedMb, 85)
  t.is(p.summary.unplacedMb, 52)
  t.is(p.summary.windowsUsed, 2)
  t.is(p.summary.byPriority.critical.placed, 1)
  t.is(p.summary.byPriority.low.unplaced, 1)
  t.is(p.summary.windowSeconds, 120)
  t.is(p.summary.usedSeconds, 85)
  t.is(p.summary.utilisation, 85 / 120)
  t.is(sec(p.summary.completionTime!), 145)
  t.is(p.summary.pendingTransfers, 5) // plan does not dequeue by default
  // Split allowed and enough room: a 30 MB LOW alone fills [40,60] + [145,155].
  q.remove('low')
  q.enqueue({ transferId: 'low30', satelliteId: 'sat-a', sizeMb: 30, priority: TransferPriority.LOW })
  const p2 = q.plan(w, { dequeue: true })
  t.deepEqual(pieces(p2, 'low30'), [
    [0, 40, 60, 20],
    [1, 145, 155, 10],
  ])
  t.deepEqual(q.pending().map((x) => x.transferId).sort(), ['late', 'lost'])
  t.is(q.lastSummary()!.pendingTransfers, 2)
  t.is(q.lastSummary()!.placedMb, 115)
})

test('hand case: antennas, one satellite per antenna; per-station override', (t) => {
  const w = [win('a', 'kourou', 0, 10, 10), win('b', 'kourou', 5, 15, 10)]
  const run = (opts?: TransferPlannerOptions) => {
    const q = new TransferPlanner(opts)
    q.enqueue({ transferId: 'ta', satelliteId: 'a', sizeMb: 10 })
    q.enqueue({ transferId: 'tb', satelliteId: 'b', sizeMb: 10 })
    return q.plan(w)
  }
  const one = run()
  t.deepEqual(pieces(one, 'ta'), [[0, 0, 10, 10]])
  t.deepEqual(one.unplaced.map((u) => [u.transferId, u.code]), [['tb', 'CAPACITY_TAKEN']])
  const two = run({ stationAntennas: { kourou: 2 } })
  t.deepEqual(pieces(two, 'tb'), [[1, 5, 15, 10]])
  t.is(new TransferPlanner({ antennasPerStation: 3, stationAntennas: { x: 1 } }).antennasOf('x'), 1)
})

test('hand case: uplink and downlink share the contact time (half duplex)', (t) => {
  const q = new TransferPlanner()
  // 10 s: downlink 100 MB (10 MB/s), uplink 10 MB (1 MB/s).
  q.enqueue({ transferId: 'down', satelliteId: 'a', sizeMb: 50, priority: TransferPriority.HIGH })
  q.enqueue({ transferId: 'up', satelliteId: 'a', sizeMb: 5, direction: TransferDirection.UPLINK })
  const p = q.plan([win('a', 'perth', 0, 10, 100, 10)])
  t.deepEqual(pieces(p, 'down'), [[0, 0, 5, 50]])
  t.deepEqual(pieces(p, 'up'), [[0, 5, 10, 5]])
  t.is(p.summary.downlinkMb, 50)
  t.is(p.summary.uplinkMb, 5)
})

test('horizon clips windows; planAsync gives the same plan', async (t) => {
  const q = new TransferPlanner()
  q.enqueue({ transferId: 'x', satelliteId: 'a', sizeMb: 30 })
  const w = [win('a', 'g', 0, 100, 100)]
  const p = q.plan(w, { startTime: at(50), endTime: at(70) })
  t.deepEqual(p.unplaced.map((u) => u.code), ['INSUFFICIENT_CAPACITY'])
  const p2 = q.plan(w, { startTime: at(50) })
  t.deepEqual(pieces(p2, 'x'), [[0, 50, 80, 30]])
  t.deepEqual(await q.planAsync(w, { startTime: at(50) }), p2)
  await t.throwsAsync(async () => q.planAsync([win('a', 'g', 5, 1, 1)]), { code: 'ERR_INVALID_ARG' })
})

// ---------------------------------------------------------------- properties vs brute force

type Inst = {
  w: ReturnType<typeof win>[]
  tr: Array<{ id: string; sat: string; size: number; pr: number; deadline?: number; up: boolean; split: boolean }>
  antennas: number
}
const PR = [TransferPriority.CRITICAL, TransferPriority.HIGH, TransferPriority.NORMAL, TransferPriority.LOW]

/** Small instance on whole seconds, every window at 1 MB/s both ways or downlink only. */
function instance(r: () => number): Inst {
  const n = (k: number) => Math.floor(r() * k)
  const sats = 1 + n(3)
  const w = Array.from({ length: 1 + n(6) }, () => {
    const a = n(30)
    const len = 1 + n(10)
    return win(`s${n(sats)}`, `g${n(2)}`, a, a + len, len, r() < 0.5 ? len : 0)
  })
  const tr = Array.from({ length: 1 + n(6) }, (_, i) => ({
    id: `t${i}`,
    sat: `s${n(sats + 1)}`,
    size: 1 + n(8),
    pr: n(4),
    deadline: r() < 0.5 ? n(42) : undefined,
    up: r() < 0.25,
    split: r() < 0.5,
  }))
  return { w, tr, antennas: 1 + n(2) }
}

/**
 * Replays the instance slot by slot (1 s slots; everything is on the grid) in the
 * planning order stated in the docs, checking each transfer against a brute force given
 * the slots taken by the transfers before it. Placeable means: splittable → at least
 * `size` free slots (a slot is free when the satellite is idle then and some window of
 * it covers the slot, carries the direction, and its station has an idle antenna);
 * unsplittable → some window and start slot with `size` consecutive free slots in it.
 */
function check(t: import('ava').ExecutionContext, inst: Inst, p: TransferPlan) {
  const order = inst.tr
    .map((x, i) => ({ x, i }))
    .sort((a, b) => a.x.pr - b.x.pr || (a.x.deadline ?? Infinity) - (b.x.deadline ?? Infinity) || a.i - b.i)
  const satBusy = new Map<string, Set<number>>()
  const stLoad = new Map<string, Map<number, number>>()
  const filled = inst.w.map(() => 0)
  const slotFree = (x: Inst['tr'][0], wi: number, k: number) => {
    const w = inst.w[wi]
    return (
      w.satelliteId === x.sat &&
      (x.up ? w.uplinkCapacityMb : w.dataCapacityMb) > 0 &&
      sec(w.startTime) <= k &&
      k + 1 <= sec(w.endTime) &&
      (x.deadline === undefined || k + 1 <= x.deadline) &&
      !satBusy.get(x.sat)?.has(k) &&
      (stLoad.get(w.station.name)?.get(k) ?? 0) < inst.antennas
    )
  }
  const slots = Array.from({ length: 50 }, (_, k) => k)
  const placeable = (x: Inst['tr'][0]) =>
    x.split
      ? slots.filter((k) => inst.w.some((_, wi) => slotFree(x, wi, k))).length >= x.size
      : inst.w.some((_, wi) => slots.some((k0) => Array.from({ length: x.size }, (_, j) => k0 + j).every((k) => slotFree(x, wi, k))))
  for (const { x } of order) {
    const mine = p.placements.filter((q) => q.transferId === x.id)
    const can = placeable(x)
    if (mine.length === 0) {
      if (can) t.fail(`left out but placeable: ${JSON.stringify(inst)} ${x.id}`)
      continue
    }
    if (!can) t.fail(`placed without room: ${x.id}`)
    if (!x.split && mine.length !== 1) t.fail('unsplittable split')
    const sum = mine.reduce((s, q) => s + q.sizeMb, 0)
    if (Math.abs(sum - x.size) > 1e-9) t.fail(`pieces sum ${sum} != ${x.size}`)
    for (const q of mine) {
      const w = inst.w[q.windowIndex]
      const [a, b] = [sec(q.startTime), sec(q.endTime)]
      if (w.satelliteId !== x.sat || a < sec(w.startTime) || b > sec(w.endTime)) t.fail('piece outside its window')
      if (x.deadline !== undefined && b > x.deadline) t.fail('deadline missed')
      if (q.priority !== PR[x.pr]) t.fail('priority echoed wrong')
      filled[q.windowIndex] += q.sizeMb
      for (let k = a; k < b; k++) {
        const s = satBusy.get(x.sat) ?? new Set<number>()
        if (s.has(k)) t.fail('satellite talks to two stations at once')
        s.add(k)
        satBusy.set(x.sat, s)
        const m = stLoad.get(w.station.name) ?? new Map<number, number>()
        m.set(k, (m.get(k) ?? 0) + 1)
        stLoad.set(w.station.name, m)
        if (m.get(k)! > inst.antennas) t.fail('more satellites than antennas')
      }
    }
  }
  inst.w.forEach((w, i) => {
    if (filled[i] > w.durationSeconds + 1e-9) t.fail(`window ${i} over-filled`)
  })
}

test('random instances: invariants and brute force (nothing placeable left out)', (t) => {
  const r = rng(2026)
  let placed = 0
  let unplaced = 0
  for (let c = 0; c < 1500; c++) {
    const inst = instance(r)
    const q = new TransferPlanner({ antennasPerStation: inst.antennas })
    for (const x of inst.tr) {
      q.enqueue({
        transferId: x.id,
        satelliteId: x.sat,
        sizeMb: x.size,
        priority: PR[x.pr],
        deadline: x.deadline === undefined ? undefined : at(x.deadline),
        direction: x.up ? TransferDirection.UPLINK : TransferDirection.DOWNLINK,
        splittable: x.split,
      })
    }
    const p = q.plan(inst.w)
    placed += p.summary.placedTransfers
    unplaced += p.summary.unplacedTransfers
    t.is(p.summary.placedTransfers + p.summary.unplacedTransfers, inst.tr.length)
    check(t, inst, p)
  }
  t.true(placed > 1000 && unplaced > 500, `${placed} ${unplaced}`)
})

test('never lower priority ahead of higher when only one fits', (t) => {
  const r = rng(7)
  for (let c = 0; c < 200; c++) {
    // One window of L MB, two unsplittable transfers that do not fit together.
    const L = 10 + Math.floor(r() * 20)
    const a = 1 + Math.floor(r() * L)
    const b = L - a + 1 + Math.floor(r() * (a - 1 + 1))
    const pa = Math.floor(r() * 4)
    let pb = Math.floor(r() * 4)
    if (pb === pa) pb = (pa + 1) % 4
    const q = new TransferPlanner()
    q.enqueue({ transferId: 'a', satelliteId: 's', sizeMb: a, priority: PR[pa], splittable: r() < 0.5 })
    q.enqueue({ transferId: 'b', satelliteId: 's', sizeMb: Math.min(b, L), priority: PR[pb], splittable: r() < 0.5 })
    const p = q.plan([win('s', 'g', 0, L, L)])
    const winner = pa < pb ? 'a' : 'b'
    t.true(p.placements.some((x) => x.transferId === winner))
    if (p.unplaced.length) t.is(p.unplaced[0].transferId, winner === 'a' ? 'b' : 'a')
  }
})

test('windows: station as a class instance with a name getter, or a plain name; extra fields ignored', (t) => {
  class Station {
    #n: string
    constructor(n: string) {
      this.#n = n
    }
    get name() {
      return this.#n
    }
  }
  const q = new TransferPlanner()
  q.enqueue({ transferId: 'x', satelliteId: 'a', sizeMb: 15 })
  const w1 = { ...win('a', 'ignored', 0, 10, 10), station: new Station('fairbanks') }
  const w2 = { ...win('a', 'ignored', 20, 30, 10), station: 'kiruna' }
  const p = q.plan([w1, w2 as unknown as PlannerWindow])
  t.deepEqual(
    p.placements.map((x) => [x.station, x.sizeMb]),
    [
      ['fairbanks', 10],
      ['kiruna', 5],
    ],
  )
})
