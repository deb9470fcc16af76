// The README's quick-start examples: each lives in examples/ exactly as the README shows it,
// runs as a user would run it (tsx, importing '@rotastellar/distributed' by name), and prints
// what it should. The type check is `tsc -p tsconfig.json` in `npm test` (it covers examples/).
import test from 'ava'
import { spawnSync } from 'node:child_process'
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const tsx = path.join(root, 'node_modules', 'tsx', 'dist', 'cli.mjs')

function run(file: string): string {
  const r = spawnSync(process.execPath, [tsx, file], { cwd: root, encoding: 'utf8', timeout: 120_000 })
  if (r.status !== 0) throw new Error(`${file} exited with ${r.status}:\n${r.stdout}\n${r.stderr}`)
  return r.stdout
}

/** The ```typescript blocks of the README's "Quick start" section, in order. */
function readmeBlocks(): string[] {
  const readme = readFileSync(path.join(root, 'README.md'), 'utf8')
  const start = readme.indexOf('## Quick start')
  const end = readme.indexOf('\n## ', start + 5)
  const section = readme.slice(start, end < 0 ? undefined : end)
  return [...section.matchAll(/```typescript\n([\s\S]*?)```/g)].map((m) => m[1].trimEnd())
}

const SDK_IMPORT = "import { Position } from '@rotastellar/sdk';"
const OWN_IMPORT = "import { Position } from '@rotastellar/distributed';"

/** The part of an example file between its README markers. */
function exampleBody(file: string): string {
  const s = readFileSync(path.join(root, file), 'utf8')
  const a = s.indexOf('// ---- README example below ----\n')
  const b = s.indexOf('// ---- README example above ----')
  if (a < 0 || b < 0) throw new Error(`${file}: README markers missing`)
  return s.slice(a + '// ---- README example below ----\n'.length, b).trimEnd()
}

const FILES = ['examples/federated-learning.ts', 'examples/model-partitioning.ts', 'examples/sync-scheduling.ts', 'examples/mesh-networking.ts']

test('every quick-start block of the README is an example file, verbatim', (t) => {
  const blocks = readmeBlocks()
  t.is(blocks.length, FILES.length)
  blocks.forEach((block, i) => {
    // The README imports Position from @rotastellar/sdk as the original does; the example
    // imports it from this package so that the object-form constructor type-checks.
    t.is(exampleBody(FILES[i]), block.replace(SDK_IMPORT, OWN_IMPORT), FILES[i])
  })
})

test('federated learning: the ratio from the real wire bytes, and the weighted average', (t) => {
  const out = run('examples/federated-learning.ts')
  const ratio = Number(/Compression ratio: ([\d.]+)x/.exec(out)![1])
  // Hand estimate: k = 10,000 of 1,000,000 kept; values 4 B each; gaps between kept indices
  // are ~geometric with mean 100, so a varint needs 1 B with probability 1 − e^(−128/100)
  // and 2 B otherwise: ≈ 1.28 B per index. 4e6 / (40,000 + 12,800 + header) ≈ 75.7.
  t.true(ratio > 74 && ratio < 77, `ratio ${ratio}`)
  // The example's gradients come from a 32-bit LCG; recompute element 0 of each here.
  const first = (seed: number) => ((((Math.imul(seed, 1664525) + 1013904223) >>> 0) / 4294967296 - 0.5) * 0.02)
  const f = Math.fround
  const expected = 0.4 * f(first(2)) + 0.3 * f(first(3)) + 0.3 * f(first(4))
  const printed = Number(/first: (-?[\d.]+)/.exec(out)![1])
  t.true(Math.abs(printed - expected) < 1e-6, `${printed} vs ${expected}`)
  t.regex(out, /Aggregated 1000000 parameters/)
})

test('model partitioning: every layer placed on a known node, a finite latency', (t) => {
  const out = run('examples/model-partitioning.ts')
  const plan = JSON.parse(/Partition plan: (.*)/.exec(out)![1])
  t.deepEqual(Object.keys(plan).sort(), ['embedding', 'output', 'transformer_1', 'transformer_2'])
  for (const node of Object.values(plan)) t.true(['sat-001', 'sat-002', 'ground-001'].includes(node as string))
  const latency = Number(/Estimated latency: ([\d.]+) ms/.exec(out)![1])
  t.true(Number.isFinite(latency) && latency > 0)
})

test('sync scheduling: windows at the two stations, capacity = downlink × duration ÷ 8', (t) => {
  const out = run('examples/sync-scheduling.ts')
  const names = [...out.matchAll(/Station: (.*)/g)].map((m) => m[1])
  const starts = [...out.matchAll(/Start: (\S+), Duration: ([\d.]+)s/g)].map((m) => ({ start: Date.parse(m[1].replace(/,$/, '')), s: Number(m[2]) }))
  const caps = [...out.matchAll(/Data capacity: ([\d.]+) MB/g)].map((m) => Number(m[1]))
  t.true(names.length > 0)
  t.is(starts.length, names.length)
  t.is(caps.length, names.length)
  const downlink: Record<string, number> = { KSC: 200, Svalbard: 300 }
  names.forEach((n, i) => {
    t.true(n in downlink, n)
    t.true(starts[i].s > 0 && starts[i].s < 3600)
    t.true(Math.abs(caps[i] - (downlink[n] * starts[i].s) / 8) <= 0.05 + 1e-9 + (downlink[n] * 0.0005) / 8, `${caps[i]} vs ${n} ${starts[i].s}`)
    if (i > 0) t.true(starts[i].start >= starts[i - 1].start)
  })
})

test('mesh networking: the two-hop route and its latency', (t) => {
  const out = run('examples/mesh-networking.ts')
  t.regex(out, /Route: sat-001 -> sat-002 -> sat-003/)
  t.regex(out, /Total latency: 4\.5 ms/)
})

test('the examples also run with the @rotastellar/sdk Position (positional constructor)', (t) => {
  for (const file of ['examples/mesh-networking.ts', 'examples/sync-scheduling.ts']) {
    const src = readFileSync(path.join(root, file), 'utf8').replace(OWN_IMPORT, SDK_IMPORT)
    t.true(src.includes(SDK_IMPORT))
    const tmp = path.join(root, 'examples', `.sdk-${path.basename(file)}`)
    writeFileSync(tmp, '// @ts-nocheck\n' + src)
    try {
      const out = run(tmp)
      if (file.includes('mesh')) t.regex(out, /Total latency: 4\.5 ms/)
      else t.regex(out, /Station: (KSC|Svalbard)/)
    } finally {
      rmSync(tmp, { force: true })
    }
  }
})

test('mission demo (6 h): a report, bytes against dense as the compression predicts, a picture', (t) => {
  const r = spawnSync(process.execPath, [tsx, 'examples/mission/demo.ts'], {
    cwd: root,
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, MISSION_HOURS: '6' },
  })
  t.is(r.status, 0, r.stderr)
  const out = r.stdout
  t.is([...out.matchAll(/^round +\d+ /gm)].length, 3)
  const bytes = /bytes sent +([\d.]+) MB compressed vs ([\d.]+) MB dense/.exec(out)!
  // Top-10 % with 8-bit values: per kept value 1 B + ~1.3 B of varint index against 4 B
  // per value dense, so about 4 / (0.1 × 2.3) ≈ 17×; headers and ties keep it within 10–30×.
  const ratio = Number(bytes[2]) / Number(bytes[1])
  t.true(ratio > 10 && ratio < 30, `ratio ${ratio}`)
  const updates = /updates delivered +(\d+) \((\d+) relayed/.exec(out)!
  t.true(Number(updates[2]) <= Number(updates[1]))
  const acc = /final test accuracy +compressed ([\d.]+)%, dense FedAvg ([\d.]+)%/.exec(out)!
  // Better than chance (10 %) after three rounds on ten classes.
  t.true(Number(acc[1]) > 15 && Number(acc[2]) > 15, acc[0])
  t.regex(out, /partition plan .* -> /)
  t.true(readFileSync(path.join(root, 'examples', 'output', 'mission.svg'), 'utf8').startsWith('<svg'))
})
