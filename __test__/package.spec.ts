// The package as npm users get it: `npm pack` of the root package and of the
// linux-x64-gnu platform package (with the binary just built), installed offline into an
// empty project with no Rust toolchain on PATH. Then CommonJS `require`, ESM `import`, the
// README examples run from that project, and their type check against the installed
// index.d.ts. Only on linux-x64-gnu, the one target this machine builds.
import test from 'ava'
import { spawnSync, type SpawnSyncOptions } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const binary = 'distributed.linux-x64-gnu.node'
const isLinuxGnu = process.platform === 'linux' && process.arch === 'x64' && Boolean((process.report?.getReport() as any)?.header?.glibcVersionRuntime)

// PATH without cargo or rustup, so nothing can be built from source.
const PATH = (process.env.PATH ?? '').split(path.delimiter).filter((p) => !/cargo|rustup/.test(p)).join(path.delimiter)

function sh(cmd: string, args: string[], opts: SpawnSyncOptions): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 180_000, ...opts, env: { ...process.env, PATH, ...(opts.env ?? {}) } })
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} → ${r.status}\n${r.stdout}\n${r.stderr}`)
  return String(r.stdout)
}

const maybe = isLinuxGnu && existsSync(path.join(root, binary)) ? test.serial : test.skip

maybe('npm pack installs into an empty project without Rust and runs the README examples', (t) => {
  const work = mkdtempSync(path.join(tmpdir(), 'rotastellar-pack-'))
  try {
    // The platform package, with the binary, as the publish job assembles it.
    const plat = path.join(work, 'linux-x64-gnu')
    mkdirSync(plat)
    copyFileSync(path.join(root, 'npm', 'linux-x64-gnu', 'package.json'), path.join(plat, 'package.json'))
    copyFileSync(path.join(root, binary), path.join(plat, binary))
    sh('npm', ['pack', '--pack-destination', work], { cwd: plat })
    sh('npm', ['pack', '--pack-destination', work], { cwd: root })
    const tarballs = readdirSync(work).filter((f) => f.endsWith('.tgz'))
    t.is(tarballs.length, 2)

    const app = path.join(work, 'app')
    mkdirSync(app)
    writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }))
    sh('npm', ['install', '--offline', '--no-audit', '--no-fund', ...tarballs.map((f) => path.join(work, f))], { cwd: app })
    t.false(existsSync(path.join(app, 'node_modules', '@rotastellar', 'distributed', 'Cargo.toml')))

    const cjs = sh(process.execPath, ['-e', "const d = require('@rotastellar/distributed'); console.log(typeof d.FederatedClient, typeof d.SpaceMesh)"], { cwd: app })
    t.is(cjs.trim(), 'function function')
    const esm = sh(process.execPath, ['--input-type=module', '-e', "import { CompressionType, SpaceMesh } from '@rotastellar/distributed'; console.log(CompressionType.TOP_K, typeof SpaceMesh)"], { cwd: app })
    t.is(esm.trim(), 'top_k function')

    // The README examples, copied into the user's project and run from there.
    const tsx = path.join(root, 'node_modules', 'tsx', 'dist', 'cli.mjs')
    const files = ['federated-learning.ts', 'model-partitioning.ts', 'sync-scheduling.ts', 'mesh-networking.ts']
    for (const f of files) copyFileSync(path.join(root, 'examples', f), path.join(app, f))
    const out = files.map((f) => sh(process.execPath, [tsx, f], { cwd: app })).join('\n')
    t.regex(out, /Compression ratio: \d+\.\dx/)
    t.regex(out, /Partition plan: \{/)
    t.regex(out, /Station: (KSC|Svalbard)/)
    t.regex(out, /Route: sat-001 -> sat-002 -> sat-003/)

    // Their type check against the installed index.d.ts.
    const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc')
    writeFileSync(
      path.join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, types: ['node'], typeRoots: [path.join(root, 'node_modules', '@types')] },
        files,
      }),
    )
    sh(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: app })
    t.true(readFileSync(path.join(app, 'node_modules', '@rotastellar', 'distributed', 'index.d.ts'), 'utf8').includes('class FederatedClient'))
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
})
