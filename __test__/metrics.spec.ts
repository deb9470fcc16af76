// TrainingMetrics: totals and ratios against hand-worked values; bad input is coded.
import test from 'ava'
import { TrainingMetrics } from '../index.js'

test('totals and ratios by hand', (t) => {
  const m = new TrainingMetrics()
  t.is(m.computeEfficiency, 0)
  t.is(m.communicationOverhead, null)
  t.is(m.averageLoss, null)
  m.recordStep(3, { loss: 2, samples: 32 })
  m.recordStep(1, { loss: 1, samples: 32 })
  m.recordSync({ bytesUp: 1000, bytesDown: 4000, durationS: 2 })
  m.recordIdle(4)
  m.recordCompression(4000, 100)
  m.recordCompression(4000, 300)
  const s = m.summary()
  // 4 s compute of 4 + 2 + 4 = 10 s; overhead 2 / 4; ratio 8000 / 400.
  t.is(s.computeEfficiency, 0.4)
  t.is(s.communicationOverhead, 0.5)
  t.is(s.averageLoss, 1.5)
  t.is(s.latestLoss, 1)
  t.is(s.totalSamples, 64)
  t.is(s.totalBytesTransferred, 5000)
  t.is(s.compressionRatio, 20)
  t.deepEqual(Array.from(m.lossHistory), [2, 1])
  m.reset()
  t.is(m.totalSteps, 0)
})

test('wall-clock steps', async (t) => {
  const m = new TrainingMetrics()
  m.startStep()
  await new Promise((r) => setTimeout(r, 20))
  m.endStep({ samples: 8 })
  t.true(m.summary().computeTimeS >= 0.015)
  t.is(m.totalSamples, 8)
})

test('bad values are coded errors and change nothing', (t) => {
  const m = new TrainingMetrics()
  t.is(t.throws<NodeJS.ErrnoException>(() => m.recordStep(-1))!.code, 'ERR_INVALID_ARG')
  t.is(t.throws<NodeJS.ErrnoException>(() => m.recordStep(1, { loss: NaN }))!.code, 'ERR_NON_FINITE')
  const e = t.throws<NodeJS.ErrnoException>(() => m.recordSync({ bytesUp: Infinity, bytesDown: 0 }))!
  t.is(e.code, 'ERR_INVALID_ARG')
  t.regex(e.message, /bytesUp/)
  t.is(m.totalSteps, 0)
  t.is(m.summary().syncCount, 0)
})
