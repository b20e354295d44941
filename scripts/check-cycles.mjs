#!/usr/bin/env node
// Lint: fail on import cycles and on imports that break the package boundaries
// of ARCHITECTURE.md section 1 (protocol imports nothing of ours; a package
// never imports its own index). Runs on the compiled output of `tsc -b`.
import madge from 'madge'
import { readdirSync, readFileSync, existsSync } from 'node:fs'
import { join, relative } from 'node:path'

const root = new URL('..', import.meta.url).pathname
const packages = ['protocol', 'server', 'client']
const allowed = { protocol: [], server: ['@concord/protocol'], client: ['@concord/protocol'] }
let failures = 0
const { builtinModules } = await import('node:module')
const NODE_BUILTINS = new Set(builtinModules)

for (const pkg of packages) {
  const dist = join(root, 'packages', pkg, 'dist')
  if (!existsSync(dist)) {
    console.error(`lint: ${relative(root, dist)} is missing; run \`npm run build\` first`)
    process.exit(1)
  }
  const result = await madge(dist, { fileExtensions: ['js'], excludeRegExp: [/\.test\.js$/] })
  const cycles = result.circular()
  for (const c of cycles) {
    console.error(`lint: import cycle in ${pkg}: ${c.join(' -> ')}`)
    failures++
  }
  for (const file of walk(dist)) {
    const text = readFileSync(file, 'utf8')
    for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|(?:^|\n)\s*import\s+['"]([^'"]+)['"]/g)) {
      const spec = m[1] ?? m[2] ?? m[3]
      if (spec.startsWith('@concord/') && !allowed[pkg].some(a => spec === a || spec.startsWith(a + '/'))) {
        console.error(`lint: ${relative(root, file)} imports ${spec}, which ${pkg} may not import`)
        failures++
      }
      // the browser side of the client must not reach Node built-ins (only its `node` entry may)
      if (pkg === 'client' && !/(^|\/)(node|file-offline-store)\.js$/.test(file) && (spec.startsWith('node:') || NODE_BUILTINS.has(spec))) {
        console.error(`lint: ${relative(root, file)} imports the Node built-in ${spec}; the client must run in browsers`)
        failures++
      }
      if (/(^|\/)index\.js$/.test(spec) && spec.startsWith('.')) {
        console.error(`lint: ${relative(root, file)} imports its own package index (${spec})`)
        failures++
      }
    }
  }
}
if (failures > 0) {
  console.error(`lint: ${failures} problem(s)`)
  process.exit(1)
}
console.log(`lint: no import cycles or boundary violations in ${packages.join(', ')}`)

function* walk(dir) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    if (e.isDirectory()) yield* walk(p)
    else if (p.endsWith('.js')) yield p
  }
}
