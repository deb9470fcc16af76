#!/usr/bin/env node
// `napi build` with this package's flags plus any given on the command line (`npm run build --
// --target x86_64-apple-darwin`), then the error-code hook on the regenerated index.js.
'use strict'
const { execFileSync } = require('node:child_process')
const path = require('node:path')

const root = path.resolve(__dirname, '..')
const cli = path.join(path.dirname(require.resolve('@napi-rs/cli/package.json', { paths: [root] })), 'dist', 'cli.js')
const flags = ['build', '--platform', '--no-const-enum', '--runtime-string-enum', ...process.argv.slice(2)]
execFileSync(process.execPath, [cli, ...flags], { cwd: root, stdio: 'inherit' })
require('./add-error-hook.js')
