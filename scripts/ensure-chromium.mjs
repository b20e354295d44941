#!/usr/bin/env node
// Test setup: the browser e2e tests drive Debian's Chromium at /usr/bin/chromium
// (never a browser downloaded by Playwright). When it is missing and we are root
// on Debian, install it with apt-get; otherwise fail with a message naming it.
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'

const CHROMIUM = '/usr/bin/chromium'

if (existsSync(CHROMIUM)) process.exit(0)

const fail = (why) => {
  console.error(`ensure-chromium: ${CHROMIUM} is missing and ${why}.`)
  console.error('ensure-chromium: the browser e2e tests need it: install Debian\'s package `chromium` (apt-get install chromium).')
  process.exit(1)
}

if (!existsSync('/etc/debian_version')) fail('this is not Debian, so it cannot be installed here')
if (typeof process.getuid !== 'function' || process.getuid() !== 0) fail('we are not root, so apt-get cannot install it')

const apt = (...args) => {
  console.log(`ensure-chromium: apt-get ${args.join(' ')}`)
  execFileSync('apt-get', args, {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  })
}

const started = Date.now()
try {
  apt('update')
  apt('install', '-y', '--no-install-recommends', 'chromium')
} catch (err) {
  fail(`installing it failed (${err.message})`)
}
if (!existsSync(CHROMIUM)) fail('apt-get reported success but did not create it')
console.log(`ensure-chromium: installed ${CHROMIUM} in ${((Date.now() - started) / 1000).toFixed(1)} s`)
