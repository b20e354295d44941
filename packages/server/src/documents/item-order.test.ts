import { describe, it, expect } from 'vitest'
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import { inspectUpdate } from '@concord/protocol'
import { LiveDocument } from './live-document.js'
import { checkItemOrder, trialItemOrder } from './item-order.js'
import { createMemoryStorage } from '../storage/memory-storage.js'
import { silentLogger } from '../ops/logger.js'
import { FakeSession as Session, seededRandom as seeded } from './testing.js'

const load = (maxUpdateCheckBytesPerSecond?: number): Promise<LiveDocument> => LiveDocument.load('d', {
  storage: createMemoryStorage(), logger: silentLogger(), presenceThrottleMs: 30, compactEveryUpdates: 100_000, compactEveryBytes: 1 << 30, maxUpdateCheckBytesPerSecond,
})
const turn = (): Promise<void> => new Promise(r => setImmediate(r))

type Id = { client: number; clock: number } | null
/** A hand-made update of string items under one client id, with whatever neighbours an attacker names (null for both: at the start of root text 't'). */
function craft(client: number, clock: number, items: { o: Id; r: Id; str: string }[]): Uint8Array {
  const e = encoding.createEncoder()
  encoding.writeVarUint(e, 1)
  encoding.writeVarUint(e, items.length)
  encoding.writeVarUint(e, client)
  encoding.writeVarUint(e, clock)
  for (const it of items) {
    encoding.writeUint8(e, 4 | (it.o ? 0x80 : 0) | (it.r ? 0x40 : 0))
    if (it.o) { encoding.writeVarUint(e, it.o.client); encoding.writeVarUint(e, it.o.clock) }
    if (it.r) { encoding.writeVarUint(e, it.r.client); encoding.writeVarUint(e, it.r.clock) }
    if (!it.o && !it.r) { encoding.writeVarUint(e, 1); encoding.writeVarString(e, 't') }
    encoding.writeVarString(e, it.str)
  }
  encoding.writeVarUint(e, 0)
  return encoding.toUint8Array(e)
}

function updatesOf(doc: Y.Doc, fn: () => void): Uint8Array[] {
  const out: Uint8Array[] = []
  const h = (u: Uint8Array): void => { out.push(u) }
  doc.on('update', h)
  fn()
  doc.off('update', h)
  return out
}

function fresh(doc: Y.Doc): string {
  const copy = new Y.Doc()
  Y.applyUpdate(copy, Y.encodeStateAsUpdate(doc))
  return copy.getText('t').toString()
}

describe('items out of order (a crafted origin and right origin)', () => {
  async function setup(maxUpdateCheckBytesPerSecond?: number): Promise<{ doc: LiveDocument; alice: Session; mallory: Session; a: Y.Doc }> {
    const doc = await load(maxUpdateCheckBytesPerSecond)
    const alice = new Session('alice')
    const mallory = new Session('mallory')
    doc.addSession(alice)
    doc.addSession(mallory)
    const a = new Y.Doc()
    a.clientID = 10
    for (const u of updatesOf(a, () => { a.getText('t').insert(0, 'hello'); a.getText('t').insert(5, ' world') })) doc.applyUpdate(alice, 1, u)
    await turn()
    return { doc, alice, mallory, a }
  }

  it('refuses an item whose right origin is its origin, before another user has it, and the document loads the same afresh', async () => {
    const { doc, alice, mallory } = await setup()
    // "Fu" then "fu" placed after and before the same character: the update the million-frame fuzz found
    doc.applyUpdate(mallory, 1, craft(66, 0, [{ o: null, r: null, str: 'Fu' }]))
    await turn()
    const text = doc.ydoc.getText('t').toString()
    expect(text).toContain('Fu')
    doc.applyUpdate(mallory, 2, craft(66, 2, [{ o: { client: 66, clock: 1 }, r: { client: 66, clock: 1 }, str: 'fu' }]))
    await turn()
    expect(mallory.errorCodes).toEqual(['CONCORD_ERR_UPDATE_MALFORMED'])
    expect(doc.ydoc.getText('t').toString()).toBe(text)
    expect(fresh(doc.ydoc)).toBe(doc.ydoc.getText('t').toString())
    expect(alice.errorCodes).toEqual([])
  })

  it('refuses a right origin before the origin, and neighbours in two different types', async () => {
    const { doc, mallory } = await setup()
    doc.applyUpdate(mallory, 1, craft(66, 0, [{ o: { client: 10, clock: 7 }, r: { client: 10, clock: 2 }, str: 'x' }]))
    const other = new Y.Doc()
    other.clientID = 2
    const [list] = updatesOf(other, () => other.getText('u').insert(0, 'abc'))
    doc.applyUpdate(mallory, 2, list!) // anyone may start a new client id
    await turn()
    doc.applyUpdate(mallory, 3, craft(66, 0, [{ o: { client: 10, clock: 2 }, r: { client: 2, clock: 1 }, str: 'y' }]))
    await turn()
    expect(mallory.errorCodes).toEqual(['CONCORD_ERR_UPDATE_MALFORMED', 'CONCORD_ERR_UPDATE_MALFORMED'])
    expect(doc.ydoc.getText('t').toString()).toBe('hello world')
    expect(Y.getState(doc.ydoc.store, 66)).toBe(0)
  })

  it('refuses an item that repeats known characters and continues them in another type than its origin\'s', async () => {
    const { doc, alice, mallory, a } = await setup()
    const [entry] = updatesOf(a, () => a.getMap('m').set('k', 1))
    doc.applyUpdate(alice, 2, entry!)
    doc.applyUpdate(mallory, 1, craft(66, 0, [{ o: { client: 10, clock: 4 }, r: null, str: 'XY' }]))
    await turn()
    expect(mallory.errorCodes).toEqual([])
    const text = doc.ydoc.getText('t').toString()
    expect(text).toBe('hello worldXY')
    // "XY" again, then "ZW": Yjs would put "ZW" after "Y" in the text, but in the map (its origin's parent)
    const mapEntry = { client: 10, clock: Y.getState(doc.ydoc.store, 10) - 1 }
    doc.applyUpdate(mallory, 2, craft(66, 0, [{ o: mapEntry, r: null, str: 'XYZW' }]))
    await turn()
    expect(mallory.errorCodes).toEqual(['CONCORD_ERR_UPDATE_MALFORMED'])
    expect(doc.ydoc.getText('t').toString()).toBe(text)
    expect(fresh(doc.ydoc)).toBe(text)
  })

  it('takes what one transaction makes without a trial, and a merged update next to concurrent edits by trial', async () => {
    const { doc, alice, a } = await setup()
    // one transaction: a run, a character inside it, one before it and one after it
    const local = updatesOf(a, () => a.transact(() => {
      const t = a.getText('t')
      t.insert(5, 'ABC')
      t.insert(6, '1')
      t.insert(5, '0')
      t.insert(10, '2')
      t.insert(0, '>')
    }))
    expect(local).toHaveLength(1)
    expect(checkItemOrder(doc.ydoc.store, inspectUpdate(local[0]!).items)).toEqual({ ok: true })
    doc.applyUpdate(alice, 2, local[0]!)
    await turn()
    expect(doc.ydoc.getText('t').toString()).toBe(a.getText('t').toString())
    // bob types offline where alice types too; her text lands after his (her client id is higher),
    // and he types between the two: sent as one merged update, his second item sits between his
    // first and a neighbour the update does not carry
    const b = new Y.Doc()
    b.clientID = 3
    const bob = new Session('bob')
    doc.addSession(bob)
    Y.applyUpdate(b, Y.encodeStateAsUpdate(doc.ydoc))
    const before = Y.encodeStateVector(b)
    b.getText('t').insert(3, 'bb')
    const [alices] = updatesOf(a, () => a.getText('t').insert(3, 'AA'))
    doc.applyUpdate(alice, 3, alices!)
    Y.applyUpdate(b, alices!)
    expect(b.getText('t').toString()).toContain('bbAA')
    b.getText('t').insert(b.getText('t').toString().indexOf('AA'), 'cc')
    const merged = Y.encodeStateAsUpdate(b, before)
    const items = inspectUpdate(merged).items
    await turn()
    const check = checkItemOrder(doc.ydoc.store, items)
    expect(check).toEqual({ ok: 'trial' })
    expect(trialItemOrder(doc.ydoc, merged, items)).toBeNull()
    doc.applyUpdate(bob, 1, merged)
    await turn()
    expect(bob.errorCodes).toEqual([])
    expect(doc.ydoc.getText('t').toString()).toBe(b.getText('t').toString())
    expect(fresh(doc.ydoc)).toBe(doc.ydoc.getText('t').toString())
  })

  it('checks by trial cost a copy of the document each: past the document\'s share they are refused, retryably, and nothing is applied', async () => {
    const { doc, mallory } = await setup(1) // one byte a second: the first trial spends the burst
    // carol (a higher client id than mallory's) typed between two of alice's characters, twice
    const carol = new Session('carol')
    doc.addSession(carol)
    doc.applyUpdate(carol, 1, craft(100, 0, [{ o: { client: 10, clock: 1 }, r: { client: 10, clock: 2 }, str: 'q' }]))
    doc.applyUpdate(carol, 2, craft(100, 1, [{ o: { client: 10, clock: 5 }, r: { client: 10, clock: 6 }, str: 'q' }]))
    // mallory types at the same places (before carol's, by client id), and after that before carol's
    // character: only a trial can tell where the second item lands
    const trialOnly = (clock: number, at: number, q: number): Uint8Array => craft(66, clock, [
      { o: { client: 10, clock: at }, r: { client: 10, clock: at + 1 }, str: 'a' },
      { o: { client: 66, clock }, r: { client: 100, clock: q }, str: 'b' },
    ])
    const first = trialOnly(0, 1, 0)
    expect(checkItemOrder(doc.ydoc.store, inspectUpdate(first).items)).toEqual({ ok: 'trial' })
    doc.applyUpdate(mallory, 1, first)
    doc.applyUpdate(mallory, 2, trialOnly(2, 5, 1))
    await turn()
    expect(mallory.errorCodes).toEqual(['CONCORD_ERR_LIMIT_UPDATE_CHECKS'])
    expect(Y.getState(doc.ydoc.store, 66)).toBe(2)
    expect(doc.ydoc.getText('t').toString()).toBe('heabqllo qworld')
    expect(fresh(doc.ydoc)).toBe(doc.ydoc.getText('t').toString())
  })

  it('property: honest editors and an attacker sending mutated and crafted items, the live document always equals itself loaded afresh', async () => {
    const base = Number(process.env.SEED ?? Date.now() % 2 ** 31)
    // ITEM_ORDER_RUNS and ITEM_ORDER_STEPS make it longer (documents grow with the steps)
    const runs = Number(process.env.ITEM_ORDER_RUNS ?? 60)
    const steps = Number(process.env.ITEM_ORDER_STEPS ?? 200)
    console.log(`item-order property: seeds ${base}..${base + runs - 1}, ${steps} steps each (reproduce with SEED=${base})`)
    let accepted = 0
    for (let seed = base; seed < base + runs; seed++) {
      const random = seeded(seed)
      const doc = await load()
      // client ids from the seed too, so a run reproduces
      const replica = (): Y.Doc => { const d = new Y.Doc(); d.clientID = 1 + Math.floor(random() * 2 ** 30); return d }
      const honest = [0, 1].map(() => ({ session: new Session('honest'), doc: replica() }))
      const mallory = new Session('mallory')
      for (const h of honest) doc.addSession(h.session)
      doc.addSession(mallory)
      // the attacker's corpus: real updates of its own document
      const own = replica()
      const corpus = updatesOf(own, () => {
        const t = own.getText('t')
        for (let i = 0; i < 40; i++) {
          if (t.length > 5 && random() < 0.3) t.delete(Math.floor(random() * (t.length - 2)), 2)
          else t.insert(Math.floor(random() * (t.length + 1)), 'fuzz'.slice(0, 1 + Math.floor(random() * 4)))
        }
        own.getMap('m').set('k', { nested: [1, 'two', null] })
      })
      corpus.push(Y.encodeStateAsUpdate(own))
      let seq = 0
      let attacks = 0
      for (let step = 0; step < steps; step++) {
        const roll = random()
        let attack: Uint8Array | null = null
        if (roll < 0.5) {
          const h = honest[Math.floor(random() * honest.length)]!
          const t = h.doc.getText('t')
          for (const u of updatesOf(h.doc, () => {
            if (t.length > 10 && random() < 0.25) t.delete(Math.floor(random() * (t.length - 3)), 3)
            else t.insert(Math.floor(random() * (t.length + 1)), `h${step} `)
          })) doc.enqueueUpdate(h.session, ++seq, u)
        } else if (roll < 0.8) {
          // crafted: items under the attacker's own client id between any characters it names
          const state = Y.decodeStateVector(Y.encodeStateVector(doc.ydoc))
          const clients = [...state.entries()]
          const anyId = (own: number): Id => {
            const r = random()
            if (r < 0.1 || clients.length === 0) return null
            if (r < 0.3 && own > 0) return { client: 4242, clock: Math.floor(random() * own) }
            const [c, n] = clients[Math.floor(random() * clients.length)]!
            return { client: c, clock: Math.floor(random() * n) }
          }
          // or neighbours a few characters apart (what lies between passes for concurrent edits)
          const chars: { client: number; clock: number }[] = []
          for (let n = doc.ydoc.getText('t')._start; n !== null; n = n.right) for (let k = 0; k < n.length; k++) chars.push({ client: n.id.client, clock: n.id.clock + k })
          const near = (): [Id, Id] => {
            const i = Math.floor(random() * (chars.length + 1)) - 1
            const j = i + 1 + Math.floor(random() * 4)
            return [i < 0 ? null : chars[i]!, j >= chars.length ? null : chars[j]!]
          }
          const start = state.get(4242) ?? 0
          const items: { o: Id; r: Id; str: string }[] = []
          let clock = start
          for (let k = 0, n = 1 + Math.floor(random() * 3); k < n; k++) {
            const [no, nr] = random() < 0.5 ? near() : [undefined, undefined]
            const o = no !== undefined ? no : k > 0 && random() < 0.3 ? { client: 4242, clock: clock - 1 } : anyId(clock)
            const r = nr !== undefined ? nr : k > 0 && random() < 0.2 ? { client: 4242, clock: clock - 1 } : anyId(clock)
            const str = 'XYZ'.slice(0, 1 + Math.floor(random() * 3))
            items.push({ o, r, str })
            clock += str.length
          }
          attack = craft(4242, start, items)
        } else {
          // mutated: a real update with a few bits flipped
          let out = Uint8Array.from(corpus[Math.floor(random() * corpus.length)]!)
          for (let m = 0, n = 1 + Math.floor(random() * 3); m < n && out.length > 0; m++) {
            const kind = random()
            const at = Math.floor(random() * out.length)
            if (kind < 0.5) out[at] ^= 1 << Math.floor(random() * 8)
            else if (kind < 0.6) out = out.slice(0, at)
            else if (kind < 0.7) out[at] = 0xff
            else if (kind < 0.85) out = Uint8Array.from([...out.subarray(0, at), ...Array.from({ length: 1 + Math.floor(random() * 8) }, () => Math.floor(random() * 256)), ...out.subarray(at)])
            else out = Uint8Array.from([...out.subarray(0, at), ...out.subarray(at, at + 16), ...out.subarray(at)])
          }
          attack = out
        }
        if (attack !== null) {
          doc.enqueueUpdate(mallory, ++seq, attack)
          attacks++
        }
        // several updates of one turn are applied in one transaction (as from one socket read)
        if (random() < 0.6) continue
        await turn()
        await turn()
        for (const h of honest) for (const u of h.session.updates.splice(0)) Y.applyUpdate(h.doc, u)
        const live = doc.ydoc.getText('t').toString()
        if (fresh(doc.ydoc) !== live) expect.fail(`seed ${seed}, step ${step}: the live document differs from itself loaded afresh`)
        for (const h of honest) {
          if (h.session.errorCodes.length > 0) expect.fail(`seed ${seed}, step ${step}: an honest update was refused (${h.session.errorCodes.join(', ')})`)
          if (h.doc.getText('t').toString() !== live) expect.fail(`seed ${seed}, step ${step}: an honest replica differs from the server`)
        }
      }
      await turn()
      await turn()
      for (const h of honest) for (const u of h.session.updates.splice(0)) Y.applyUpdate(h.doc, u)
      accepted += attacks - mallory.errorCodes.length
      for (const h of honest) {
        expect(h.session.errorCodes).toEqual([])
        expect(h.doc.getText('t').toString()).toBe(doc.ydoc.getText('t').toString())
      }
    }
    console.log(`item-order property: ${accepted} hostile updates accepted (applied as valid)`)
    expect(accepted).toBeGreaterThan(0)
  }, Number(process.env.ITEM_ORDER_MS ?? 120_000))
})
