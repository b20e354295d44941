import { describe, it, expect, afterEach } from 'vitest'
import * as Y from 'yjs'
import { encodeSnapshot, type OfflineSnapshot } from './offline-store.js'
import { decodeSharedRecord, encodeSharedRecord, LEGACY_WRITER, viewOf, withSave, type SharedRecord } from './shared-record.js'
import { FROM_TAB, TabSync } from './tab-sync.js'

// The record that tabs sharing one IndexedDB database keep per document (each tab's pending
// updates apart, the states merged), and the BroadcastChannel that shares edits between tabs.
// Real IndexedDB and real tabs: e2e/browser-client.test.ts, in Chromium.

/** A writer's document with one local edit; returns its snapshot as a handle would save it. */
function writerEdit(doc: Y.Doc, text: string, seq: number): OfflineSnapshot {
  let update: Uint8Array | null = null
  const grab = (u: Uint8Array): void => { update = u }
  doc.once('update', grab)
  doc.getText('t').insert(doc.getText('t').length, text)
  return { state: Y.encodeStateAsUpdate(doc), pending: [{ seq, update: update! }], nextSeq: seq + 1 }
}

const textOf = (state: Uint8Array): string => {
  const doc = new Y.Doc()
  Y.applyUpdate(doc, state)
  return doc.getText('t').toString()
}

/** Encode and decode on every step, as the store does. */
const roundTrip = (r: SharedRecord): SharedRecord => decodeSharedRecord(encodeSharedRecord(r))

describe('the shared offline record', () => {
  it('two writers saving in turn keep both their pending updates and both their texts', () => {
    const a = new Y.Doc()
    const b = new Y.Doc()
    let record = roundTrip(withSave(null, 'tab-a', writerEdit(a, 'Ada. ', 1), new Set(), 1))
    record = roundTrip(withSave(record, 'tab-b', writerEdit(b, 'Bea. ', 1), new Set(), 2))
    // the single-writer format would have kept only Bea's: here both sections and both texts stay
    expect(record.sections.map(s => [s.writer, s.pending.length])).toEqual([['tab-a', 1], ['tab-b', 1]])
    expect(textOf(record.state)).toMatch(/^(Ada\. Bea\. |Bea\. Ada\. )$/)
    // Ada's second save replaces only her section, and keeps Bea's text in the state
    record = roundTrip(withSave(record, 'tab-a', { ...writerEdit(a, 'More. ', 2), pending: [] }, new Set(), 3))
    expect(record.sections.map(s => [s.writer, s.pending.length])).toEqual([['tab-b', 1], ['tab-a', 0]])
    expect(textOf(record.state)).toContain('Bea. ')
    expect(textOf(record.state)).toContain('Ada. More. ')
  })

  it('a load returns the writer\'s own pending under its seqs, and adopts only the writers that are gone, under new seqs', () => {
    const record: SharedRecord = {
      state: Y.encodeStateAsUpdate(new Y.Doc()), lastWriter: 'me',
      sections: [
        { writer: 'me', nextSeq: 8, savedAt: 1, pending: [{ seq: 6, update: new Uint8Array([1]) }, { seq: 7, update: new Uint8Array([2]) }] },
        { writer: 'live', nextSeq: 3, savedAt: 1, pending: [{ seq: 2, update: new Uint8Array([3]) }] },
        { writer: 'dead', nextSeq: 5, savedAt: 1, pending: [{ seq: 1, update: new Uint8Array([4]) }, { seq: 4, update: new Uint8Array([5]) }] },
      ],
    }
    const { snapshot, adopted } = viewOf(record, 'me', w => w === 'dead')
    expect(adopted).toEqual(['dead'])
    expect(snapshot.pending.map(p => [p.seq, [...p.update]])).toEqual([[6, [1]], [7, [2]], [8, [4]], [9, [5]]])
    expect(snapshot.nextSeq).toBe(10)
    // a new writer (no section of its own) starts at seq 1
    const fresh = viewOf(record, 'new', w => w !== 'live')
    expect(fresh.adopted).toEqual(['me', 'dead'])
    expect(fresh.snapshot.pending.map(p => p.seq)).toEqual([1, 2, 3, 4])
  })

  it('a save drops the sections its writer adopted and every other empty section, never a live writer\'s pending', () => {
    const doc = new Y.Doc()
    const record: SharedRecord = {
      state: Y.encodeStateAsUpdate(doc), lastWriter: 'x',
      sections: [
        { writer: 'dead', nextSeq: 2, savedAt: 1, pending: [{ seq: 1, update: new Uint8Array([4]) }] },
        { writer: 'live', nextSeq: 2, savedAt: 1, pending: [{ seq: 1, update: new Uint8Array([3]) }] },
        { writer: 'idle', nextSeq: 9, savedAt: 1, pending: [] },
      ],
    }
    const after = withSave(record, 'me', writerEdit(doc, 'x', 1), new Set(['dead']), 2)
    expect(after.sections.map(s => s.writer)).toEqual(['live', 'me'])
    expect(after.lastWriter).toBe('me')
  })

  it('a writer saving over its own state replaces it; over another writer\'s it merges, and an unreadable state gives way', () => {
    const doc = new Y.Doc()
    const first = withSave(null, 'me', writerEdit(doc, 'one ', 1), new Set(), 1)
    const mine = writerEdit(doc, 'two ', 2)
    // no merge needed: the same bytes as the writer's own state
    expect(withSave(first, 'me', mine, new Set(), 2).state).toBe(mine.state)
    const broken: SharedRecord = { ...first, state: new Uint8Array([200, 1, 2]), lastWriter: 'other' }
    expect(textOf(withSave(broken, 'me', mine, new Set(), 3).state)).toBe('one two ')
  })

  it('reads a record of the single-writer format as a section nobody holds, so its pending updates are adopted', () => {
    const doc = new Y.Doc()
    const old = writerEdit(doc, 'from before ', 3)
    const record = decodeSharedRecord(encodeSnapshot(old))
    expect(record.sections).toEqual([{ writer: LEGACY_WRITER, nextSeq: 4, savedAt: 0, pending: old.pending }])
    const { snapshot, adopted } = viewOf(record, 'me', w => w !== 'me')
    expect(adopted).toEqual([LEGACY_WRITER])
    expect(snapshot.pending.map(p => p.update)).toEqual([old.pending[0]!.update])
    expect(() => decodeSharedRecord(new Uint8Array([9]))).toThrow(/unknown offline record format 9/)
  })
})

describe('tabs over a BroadcastChannel', () => {
  const open: TabSync[] = []
  afterEach(() => {
    for (const t of open.splice(0)) t.close()
  })

  const tab = (channel: string, doc: Y.Doc, onBye: () => void = () => {}): TabSync => {
    const t = new TabSync(channel, doc, onBye)
    open.push(t)
    // a tab broadcasts its own edits (the handle does this for local transactions)
    doc.on('update', (u: Uint8Array, origin: unknown) => { if (origin !== FROM_TAB) t.broadcast(u) })
    return t
  }

  const until = async (check: () => boolean, what: string): Promise<void> => {
    for (let i = 0; i < 500 && !check(); i++) await new Promise(r => setTimeout(r, 10))
    if (!check()) throw new Error(`timed out waiting for ${what}`)
  }

  it('a tab that opens later receives what the others have and gives them what it had; edits flow both ways; bye is heard', async () => {
    const channel = `test-${Math.random()}`
    const a = new Y.Doc()
    a.getText('t').insert(0, 'A before. ')
    tab(channel, a).start()
    const b = new Y.Doc()
    b.getText('t').insert(0, 'B offline. ')
    let byes = 0
    const tb = tab(channel, b, () => { byes++ })
    tb.start()
    await until(() => a.getText('t').length === 21 && b.getText('t').toString() === a.getText('t').toString(), 'both tabs to hold both texts')
    // another channel (another document) hears nothing
    const other = new Y.Doc()
    tab(`${channel}-other`, other).start()
    a.getText('t').insert(0, 'live ')
    await until(() => b.getText('t').toString().startsWith('live '), 'a live edit')
    // the edits another tab applies are marked as the other tab's (the handle does not re-send them)
    const origins: unknown[] = []
    b.on('update', (_u: Uint8Array, origin: unknown) => origins.push(origin))
    a.getText('t').insert(0, 'x')
    await until(() => origins.length === 1, 'one more edit')
    expect(origins).toEqual([FROM_TAB])
    expect(other.getText('t').toString()).toBe('')
    open[0]!.close()
    await until(() => byes === 1, 'the closing tab\'s bye')
  })

  it('ignores what is not a message of ours: garbage, malformed fields, updates that are not Yjs', async () => {
    const channel = `test-${Math.random()}`
    const doc = new Y.Doc()
    tab(channel, doc).start()
    const raw = new BroadcastChannel(channel)
    raw.postMessage('hello')
    raw.postMessage({ t: 'update', from: 'x', update: new Uint8Array([255, 255, 255]) })
    raw.postMessage({ t: 'hello', from: 'x', sv: 'not bytes' })
    raw.postMessage(null)
    const good = new Y.Doc()
    good.getText('t').insert(0, 'fine')
    raw.postMessage({ t: 'update', from: 'x', update: Y.encodeStateAsUpdate(good) })
    await until(() => doc.getText('t').toString() === 'fine', 'the valid update after the garbage')
    raw.close()
  })
})
