import test from 'ava'
import { Position } from '../index.js'

test('Position validates and serialises', (t) => {
  const p = new Position({ latitude: 28.5729, longitude: -80.649, altitudeKm: 0.1 })
  t.deepEqual(JSON.parse(JSON.stringify(p)), { latitude: 28.5729, longitude: -80.649, altitudeKm: 0.1 })
  t.is(new Position({ latitude: 0, longitude: 0 }).altitudeKm, 0)
  const e = t.throws(() => new Position({ latitude: 91, longitude: 0 })) as any
  t.is(e.code, 'ERR_INVALID_ARG')
  t.regex(e.message, /latitude.*91/)
  const e2 = t.throws(() => new Position({ latitude: 0, longitude: Number.NaN })) as any
  t.is(e2.code, 'ERR_INVALID_ARG')
})
