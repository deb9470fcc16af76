#!/usr/bin/env node
// After `napi build` regenerates index.js and index.d.ts, append the line that builds partition
// plans in JS (see partition.js) and the one that gives napi-rs's own errors stable codes
// (see errors.js), with the table of options-object parameters read from index.d.ts (napi-rs
// would turn a string or number given for one into an empty options object, silently).
// Idempotent: the lines are replaced on every build.
'use strict'
const fs = require('node:fs')
const path = require('node:path')

const root = path.join(__dirname, '..')

/** Splits a parameter list at its top-level commas. */
function splitParams(list) {
  const out = []
  let depth = 0
  let cur = ''
  for (const ch of list) {
    if ('(<[{'.includes(ch)) depth++
    if (')>]}'.includes(ch)) depth--
    if (ch === ',' && depth === 0) {
      out.push(cur.trim())
      cur = ''
    } else cur += ch
  }
  if (cur.trim()) out.push(cur.trim())
  return out
}

/** `{ Class: { 'constructor' | method: [[index, name], …] } }` for parameters typed as an
 *  exported `…Options` interface. */
function optionsParams(dts) {
  const interfaces = new Set([...dts.matchAll(/^export interface (\w+)/gm)].map((m) => m[1]))
  const table = {}
  for (const block of dts.matchAll(/^export declare class (\w+) \{\n([\s\S]*?)^\}/gm)) {
    const [, cls, body] = block
    for (const m of body.matchAll(/^ {2}(?:static )?(\w+)\((.*)\)(?::|$)/gm)) {
      const [, method, list] = m
      const found = []
      splitParams(list).forEach((p, i) => {
        const t = /^(\w+)\??: (\w+)/.exec(p)
        if (t && t[2].endsWith('Options') && interfaces.has(t[2])) found.push([i, t[1]])
      })
      if (found.length) (table[cls] ??= {})[method] = found
    }
  }
  return table
}

/** Exported classes whose declaration has no constructor (instances come from methods). */
function withoutConstructor(dts) {
  const out = []
  for (const [, cls, body] of dts.matchAll(/^export declare class (\w+) \{\n([\s\S]*?)^\}/gm)) {
    if (!/^ {2}constructor\(/m.test(body)) out.push(cls)
  }
  return out
}

const file = path.join(root, 'index.js')
const dts = fs.readFileSync(path.join(root, 'index.d.ts'), 'utf8')
const table = optionsParams(dts)
// Plans are built in JS (partition.js) before errors.js wraps every method, the new ones too.
const hooks = [
  `require('./partition.js').install(module.exports)`,
  `require('./errors.js').install(module.exports, ${JSON.stringify(table)}, ${JSON.stringify(withoutConstructor(dts))})`,
]
const text = fs
  .readFileSync(file, 'utf8')
  .replace(/\n*require\('\.\/partition\.js'\)\.install\(.*\)\n*/, '\n')
  .replace(/\n*require\('\.\/errors\.js'\)\.install\(.*\)\n*$/, '')
fs.writeFileSync(file, text.trimEnd() + '\n\n' + hooks.join('\n') + '\n')
