// Extension hooks on the edit path: one SDK writer types N single-character updates (one in
// flight at a time: each waits for its durable ack), into a document that starts empty or with a
// large text, against an in-process server with no extension, a no-op observer, or the content
// validator (which checks a copy of the document per update). Prints a markdown table.
//
//   npx tsc -b && node bench/extensions.mjs [--updates 300]
import { parseArgs } from 'node:util'
import { createServer } from '@concord/server'
import { createContentValidator } from '@concord/server/extensions'
import { createClient } from '@concord/client/node'

const { values } = parseArgs({ options: { updates: { type: 'string' } } })
const N = Number(values.updates ?? 300)

const variants = {
  none: () => [],
  'no-op onChange + beforeChange': () => [{ name: 'noop', onChange () {}, beforeChange () {} }],
  'content validator': () => [createContentValidator({ roots: { t: 'text' }, maxTextLength: 10_000_000 })]
}

async function run (variant, baseChars) {
  const server = createServer({ auth: 'none', extensions: variants[variant]() })
  const { url } = await server.listen(0, '127.0.0.1')
  const client = createClient({ url })
  const h = client.open('doc')
  await h.whenSynced()
  const text = h.doc.getText('t')
  if (baseChars > 0) {
    text.insert(0, 'x'.repeat(baseChars))
    await h.whenSaved()
  }
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  for (let i = 0; i < N; i++) {
    text.insert(text.length, 'a')
    await h.whenSaved()
  }
  const ms = performance.now() - t0
  const cpu = process.cpuUsage(cpu0)
  client.close()
  await server.close()
  return { perUpdateMs: ms / N, cpuPerUpdateMs: (cpu.user + cpu.system) / 1000 / N }
}

console.log(`| extensions | document before | ms per update (typed, acked) | CPU ms per update (server + client) |`)
console.log('|---|---:|---:|---:|')
for (const base of [0, 200_000]) {
  for (const v of Object.keys(variants)) {
    const r = await run(v, base)
    console.log(`| ${v} | ${base === 0 ? 'empty' : `${base.toLocaleString('en')} chars`} | ${r.perUpdateMs.toFixed(2)} | ${r.cpuPerUpdateMs.toFixed(2)} |`)
  }
}
