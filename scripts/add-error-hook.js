#!/usr/bin/env node
// After `napi build` regenerates index.js, append the one line that gives napi-rs's own
// errors stable codes (see errors.js). Idempotent.
'use strict'
const fs = require('node:fs')
const path = require('node:path')

const file = path.join(__dirname, '..', 'index.js')
const hook = "require('./errors.js').install(module.exports)"
const text = fs.readFileSync(file, 'utf8')
if (!text.includes(hook)) fs.writeFileSync(file, text.trimEnd() + '\n\n' + hook + '\n')
