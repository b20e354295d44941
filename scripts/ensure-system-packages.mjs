#!/usr/bin/env node
// Test setup: the e2e tests use real programs from Debian's packages:
//   /usr/bin/chromium      (package chromium)      the browser tests (never a browser downloaded by Playwright)
//   /usr/bin/redis-server  (package redis-server)  the multi-node tests start their own Redis on a free port
//   /usr/sbin/nginx        (package nginx)         the load-balancer test runs it with the documented configuration
// Packages are installed with services kept from starting (policy-rc.d): the tests start their own.
// When one is missing and we are root on Debian, install it with apt-get (one `apt-get update` for
// all); otherwise fail with a message naming it. PostgreSQL is not installed here: the tests use
// the machine's binaries (see e2e/services/postgres.ts).
import { execFileSync } from 'node:child_process'
import { existsSync, rmSync, writeFileSync } from 'node:fs'

const NEEDED = [
  { path: '/usr/bin/chromium', pkg: 'chromium', why: 'the browser e2e tests' },
  { path: '/usr/bin/redis-server', pkg: 'redis-server', why: 'the multi-node e2e tests' },
  { path: '/usr/sbin/nginx', pkg: 'nginx', why: 'the load-balancer e2e test (the nginx configuration of docs/deployment.md)' },
]

const missing = NEEDED.filter(n => !existsSync(n.path))
if (missing.length === 0) process.exit(0)

const names = missing.map(m => m.path).join(', ')
const fail = (why) => {
  console.error(`ensure-system-packages: ${names} missing and ${why}.`)
  for (const m of missing) console.error(`ensure-system-packages: ${m.why} need ${m.path}: install Debian's package \`${m.pkg}\` (apt-get install ${m.pkg}).`)
  process.exit(1)
}

if (!existsSync('/etc/debian_version')) fail('this is not Debian, so they cannot be installed here')
if (typeof process.getuid !== 'function' || process.getuid() !== 0) fail('we are not root, so apt-get cannot install them')

const apt = (...args) => {
  console.log(`ensure-system-packages: apt-get ${args.join(' ')}`)
  execFileSync('apt-get', args, {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  })
}

const started = Date.now()
// Debian starts a package's service on install (nginx on port 80, redis-server on 6379) unless
// policy-rc.d says no: the tests start their own, on free ports
const POLICY = '/usr/sbin/policy-rc.d'
const ownPolicy = !existsSync(POLICY)
if (ownPolicy) writeFileSync(POLICY, '#!/bin/sh\nexit 101\n', { mode: 0o755 })
try {
  apt('update')
  apt('install', '-y', '--no-install-recommends', ...missing.map(m => m.pkg))
} catch (err) {
  fail(`installing them failed (${err.message})`)
} finally {
  if (ownPolicy) rmSync(POLICY, { force: true })
}
const still = missing.filter(m => !existsSync(m.path))
if (still.length > 0) fail(`apt-get reported success but did not create ${still.map(m => m.path).join(', ')}`)
console.log(`ensure-system-packages: installed ${missing.map(m => m.pkg).join(', ')} in ${((Date.now() - started) / 1000).toFixed(1)} s`)
