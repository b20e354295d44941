import { createClient, connectAll } from '/work/main/bench/lib/clients.mjs'
import * as Y from 'yjs'
const url = process.argv[2]
const N = Number(process.argv[3] ?? 20)
const got = Array.from({length:N}, () => new Map())
const cs = []
for (let i = 0; i < N; i++) {
  const doc = new Y.Doc(); doc.clientID = 10_000_000 + i
  const c = createClient(`${url}/dbg-room-${process.pid}`, { protocol: 'y-websocket', doc, applyRemote: false, onAwareness: (u) => {
    // decode
    let pos = 0; const vu = () => { let n = 0, m = 1; for(;;){ const b = u[pos++]; n += (b & 0x7f) * m; if (b < 0x80) return n; m *= 128 } }
    for (let k = vu(); k > 0; k--) { const id = vu(), clock = vu(); const len = vu(); const js = Buffer.from(u.subarray(pos, pos+len)).toString(); pos += len; got[i].set(id, clock + ' ' + js) }
  }})
  cs.push(c)
}
await connectAll(cs, { concurrency: 5, timeoutMs: 5000 })
const R = 15
await Promise.all(cs.map(async (c, i) => { await new Promise(r => setTimeout(r, Math.random() * 200)); for (let r = 1; r <= R; r++) { c.sendAwareness({ user: { name: 'editor ' + i, color: '#3366cc' }, cursor: { anchor: r, head: r } }, r); if (r % 5 === 0) c.doc.getText('text').insert(0, 'x' + i); await new Promise(r => setTimeout(r, 200)) } }))
await new Promise(r => setTimeout(r, 500))
let missing = 0
for (let i = 0; i < N; i++) for (let j = 0; j < N; j++) if (i !== j && !(got[i].get(10_000_000 + j) ?? '').startsWith(R + ' ')) { missing++; if (missing < 5) console.log(i, j, got[i].get(10_000_000 + j)) }
console.log('missing finals', missing, 'of', N * (N - 1))
process.exit(0)
