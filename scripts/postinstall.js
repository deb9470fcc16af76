#!/usr/bin/env node
// Makes sure a native binary exists for this machine.
//
// 1. If the loader already finds one (a prebuilt platform package from npm, or a
//    `distributed.<platform>.node` file beside index.js), there is nothing to do.
// 2. Otherwise, when the Rust sources are present (a git clone) and cargo is on PATH,
//    build from source: with the napi CLI when it is installed (it also regenerates
//    index.js and index.d.ts), else with plain cargo, copying the library into place.
// 3. Otherwise explain what is missing, without failing the install.
'use strict'
const { execFileSync, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const root = path.resolve(__dirname, '..')

function bindingLoads() {
  const r = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(path.join(root, 'index.js'))})`], {
    stdio: 'pipe',
  })
  return r.status === 0
}

function hasCargo() {
  return spawnSync('cargo', ['--version'], { stdio: 'ignore' }).status === 0
}

function platformSuffix() {
  const { platform, arch } = process
  if (platform === 'linux') {
    const report = typeof process.report?.getReport === 'function' ? process.report.getReport() : null
    const glibc = report && report.header && report.header.glibcVersionRuntime
    return `linux-${arch}-${glibc ? 'gnu' : 'musl'}`
  }
  if (platform === 'win32') return `win32-${arch}-msvc`
  return `${platform}-${arch}`
}

function main() {
  if (process.env.ROTASTELLAR_SKIP_BUILD) return
  if (fs.existsSync(path.join(root, 'index.js')) && bindingLoads()) return
  if (!fs.existsSync(path.join(root, 'Cargo.toml'))) {
    console.warn('[@rotastellar/distributed] no prebuilt binary for this platform and no Rust sources to build from.')
    return
  }
  if (!hasCargo()) {
    console.warn('[@rotastellar/distributed] no prebuilt binary found and cargo is not installed: install Rust (https://rustup.rs) and run `npm run build`.')
    return
  }
  const napiCli = path.join(root, 'node_modules', '@napi-rs', 'cli', 'dist', 'cli.js')
  console.log('[@rotastellar/distributed] building the native addon from source (release profile)...')
  if (fs.existsSync(napiCli)) {
    execFileSync(process.execPath, [path.join(__dirname, 'build.js'), '--release'], { cwd: root, stdio: 'inherit' })
  } else {
    execFileSync('cargo', ['build', '--release', '--lib'], { cwd: root, stdio: 'inherit' })
    const lib = { linux: 'librotastellar_distributed.so', darwin: 'librotastellar_distributed.dylib', win32: 'rotastellar_distributed.dll' }[process.platform]
    fs.copyFileSync(path.join(root, 'target', 'release', lib), path.join(root, `distributed.${platformSuffix()}.node`))
  }
}

main()
