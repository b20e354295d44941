import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { appendFile, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as Y from 'yjs'
import { Awareness, encodeAwarenessUpdate } from 'y-protocols/awareness'
import { pino, type Logger } from 'pino'
import {
  encodeBase64, encodeRecord, readRecording, RecordingFormatError,
  type RecordingRecord,
} from './recording-file.js'
import { createRecorder, fileStem, type DocumentRecording, type Recorder } from './recorder.js'
import { formatReplayReport, replayRecording } from '../../cli/replay.js'

let dir: string

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'concord-recording-'))
})

afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

/** A logger whose records are kept for assertions. */
function capturingLogger(): { logger: Logger; records: { level: number; msg: string; [k: string]: unknown }[] } {
  const records: { level: number; msg: string }[] = []
  const logger = pino({ level: 'info' }, { write: (line: string) => { records.push(JSON.parse(line)) } })
  return { logger, records }
}

function recorder(options: Partial<Parameters<typeof createRecorder>[0]> = {}): Recorder {
  return createRecorder({ dir, logger: pino({ level: 'silent' }), serverName: 'concord test', documents: ['doc'], ...options })
}

const emptyDoc = (): Uint8Array => Y.encodeStateAsUpdate(new Y.Doc())

/** A client editing its own Y.Doc; `edit` returns the updates the edit produced. */
class Editor {
  readonly doc = new Y.Doc()
  constructor(clientID: number, base?: Uint8Array) {
    this.doc.clientID = clientID
    if (base !== undefined) Y.applyUpdate(this.doc, base)
  }

  edit(fn: (doc: Y.Doc) => void): Uint8Array {
    const out: Uint8Array[] = []
    const h = (u: Uint8Array): void => { out.push(u) }
    this.doc.on('update', h)
    this.doc.transact(() => fn(this.doc))
    this.doc.off('update', h)
    expect(out).toHaveLength(1)
    return out[0]!
  }

  receive(...updates: Uint8Array[]): void {
    for (const u of updates) Y.applyUpdate(this.doc, u)
  }
}

function presence(editor: Editor, name: string): Uint8Array {
  const awareness = new Awareness(editor.doc)
  awareness.setLocalStateField('user', { name })
  const update = encodeAwarenessUpdate(awareness, [editor.doc.clientID])
  awareness.destroy()
  return update
}

/**
 * Two people editing a text and a map concurrently, fed to a recording as a server
 * would receive them (interleaved); returns the server's merged state.
 */
function scriptedSession(rec: DocumentRecording, base: Uint8Array): Y.Doc {
  const server = new Y.Doc()
  Y.applyUpdate(server, base)
  const alice = new Editor(1001, base)
  const bob = new Editor(1002, base)
  const receive = (session: string, u: Uint8Array): void => {
    rec.update(session, u)
    Y.applyUpdate(server, u)
  }
  rec.open('c1/doc', { user: 'alice', role: 'write', protocol: 'native' })
  rec.open('c2/doc', { user: 'bob', role: 'write', protocol: 'y-websocket' })
  // concurrent: neither has seen the other's edits yet
  const a1 = alice.edit(d => d.getText('t').insert(5, ' world'))
  const b1 = bob.edit(d => d.getText('t').insert(0, '> '))
  const b2 = bob.edit(d => d.getMap('m').set('status', 'review'))
  const a2 = alice.edit(d => d.getMap('m').set('status', 'final'))
  receive('c1/doc', a1)
  rec.awareness('c1/doc', presence(alice, 'alice'))
  receive('c2/doc', b1)
  receive('c2/doc', b2)
  rec.awareness('c2/doc', presence(bob, 'bob'))
  receive('c1/doc', a2)
  // bob sees alice's text and deletes part of it
  bob.receive(a1, a2)
  alice.receive(b1, b2)
  const b3 = bob.edit(d => d.getText('t').delete(7, 3))
  receive('c2/doc', b3)
  alice.receive(b3)
  const a3 = alice.edit(d => d.getMap('m').set('count', 2))
  receive('c1/doc', a3)
  bob.receive(a3)
  rec.close('c2/doc')
  rec.close('c1/doc')
  // sanity: the script converges
  expect(alice.doc.getText('t').toString()).toBe(server.getText('t').toString())
  expect(bob.doc.getMap('m').toJSON()).toEqual(server.getMap('m').toJSON())
  return server
}

function baseState(): Uint8Array {
  const doc = new Y.Doc()
  doc.clientID = 1000
  doc.getText('t').insert(0, 'hello')
  doc.getMap('m').set('status', 'draft')
  return Y.encodeStateAsUpdate(doc)
}

/** Write a recording by hand (header and base added). */
async function writeRecording(name: string, records: RecordingRecord[], opts: { header?: Partial<RecordingRecord>; base?: Uint8Array } = {}): Promise<string> {
  const path = join(dir, name)
  const header = { type: 'header', format: 'concord-recording', version: 1, document: 'doc', startedAt: 1_700_000_000_000, server: 'concord test', reason: 'all', ...opts.header } as RecordingRecord
  const base: RecordingRecord = { type: 'base', t: 0, update: encodeBase64(opts.base ?? emptyDoc()) }
  await writeFile(path, [header, base, ...records].map(encodeRecord).join(''))
  return path
}

describe('recording file', () => {
  it('round-trips every record type', async () => {
    const update = new Editor(7).edit(d => d.getText('t').insert(0, 'x'))
    const records: RecordingRecord[] = [
      { type: 'open', t: 1, session: 's1', user: 'ann', role: 'write', protocol: 'native' },
      { type: 'open', t: 2, session: 's2', user: null, role: 'read', protocol: 'y-websocket' },
      { type: 'update', t: 3, session: 's1', data: encodeBase64(update) },
      { type: 'update', t: 4, session: 's2', data: encodeBase64(update), refused: 'CONCORD_ERR_AUTH_FORBIDDEN' },
      { type: 'awareness', t: 5, session: 's1', data: encodeBase64(new Uint8Array([1, 2, 3])) },
      { type: 'close', t: 6, session: 's2' },
      { type: 'end', t: 7, update: encodeBase64(update) },
    ]
    for (const r of records) expect(encodeRecord(r)).toMatch(/^\{.*\}\n$/)
    const path = await writeRecording('round-trip.jsonl', records, { header: { document: 'notes/ä b' } })
    const rec = await readRecording(path)
    expect(rec.header).toMatchObject({ format: 'concord-recording', version: 1, document: 'notes/ä b', reason: 'all' })
    expect(rec.base).toEqual(emptyDoc())
    expect(rec.records).toEqual(records.slice(0, 6))
    expect(rec.end).toEqual({ t: 7, update })
    expect(rec.truncated).toBe(false)
    expect(rec.lineCount).toBe(9)
  })

  it('names the line of a malformed record', async () => {
    const open = encodeRecord({ type: 'open', t: 1, session: 's', user: null, role: 'write', protocol: 'native' })
    const cases: [string, string, RegExp][] = [
      ['bad JSON', '{"type":"close","t":1,"session":"s"\n', /line 3: malformed JSON/],
      ['unknown type', '{"type":"teleport","t":1}\n', /line 3: unknown record type "teleport"/],
      ['missing field', '{"type":"update","t":1,"session":"s"}\n', /line 3: update record: missing field "data"/],
      ['mistyped field', '{"type":"open","t":1,"session":"s","user":5,"role":"write","protocol":"native"}\n', /line 3: open record: field "user" must be a string or null/],
      ['bad base64', '{"type":"update","t":1,"session":"s","data":"AA$A"}\n', /line 3: update record: field "data" is not valid base64/],
      ['base64url', '{"type":"awareness","t":1,"session":"s","data":"-_8="}\n', /line 3: .*not valid base64/],
      ['not an object', '[1,2]\n', /line 3: a record must be a JSON object/],
      ['empty line', '\n' + open, /line 3: empty line/],
      ['second header', '{"type":"header","format":"concord-recording","version":1,"document":"d","startedAt":1,"server":"s","reason":"all"}\n', /line 3: a second header/],
      ['misplaced base', open + '{"type":"base","t":1,"update":"AAA="}\n', /line 4: the base record must directly follow the header/],
      ['after end', '{"type":"end","t":1,"update":"AAA="}\n' + open, /line 4: "open" record after the end record/],
      ['orphan refusal', '{"type":"refused","t":1,"session":"s","code":"X"}\n', /line 3: refused record for session "s", which sent no update/],
    ]
    for (const [what, tail, message] of cases) {
      const path = await writeRecording(`bad-${what.replace(/ /g, '-')}.jsonl`, [])
      await appendFile(path, tail + open)
      const err = await readRecording(path).then(() => null, (e: unknown) => e)
      expect(err, what).toBeInstanceOf(RecordingFormatError)
      expect((err as Error).message, what).toMatch(message)
      expect((err as RecordingFormatError).line, what).toBe(Number(/line (\d+)/.exec((err as Error).message)![1]))
    }
  })

  it('refuses files that are not Concord recordings of this version', async () => {
    const wrongFormat = await writeRecording('format.jsonl', [], { header: { format: 'other' } as Partial<RecordingRecord> })
    await expect(readRecording(wrongFormat)).rejects.toThrow(/line 1: header record: field "format" is "other", expected "concord-recording"/)
    const wrongVersion = await writeRecording('version.jsonl', [], { header: { version: 2 } as Partial<RecordingRecord> })
    await expect(readRecording(wrongVersion)).rejects.toThrow(/line 1: header record: field "version" is 2: unsupported version/)
    const noHeader = join(dir, 'no-header.jsonl')
    await writeFile(noHeader, encodeRecord({ type: 'close', t: 0, session: 's' }))
    await expect(readRecording(noHeader)).rejects.toThrow(/line 1: expected the header record, got "close"/)
    const empty = join(dir, 'empty.jsonl')
    await writeFile(empty, '')
    await expect(readRecording(empty)).rejects.toThrow(/empty/)
    await expect(readRecording(join(dir, 'missing.jsonl'))).rejects.toThrow(/cannot read the recording/)
  })

  it('tolerates a last line cut off by a crash, but not a malformed line before it', async () => {
    const path = await writeRecording('crash.jsonl', [{ type: 'open', t: 1, session: 's', user: null, role: 'write', protocol: 'native' }])
    await appendFile(path, '{"type":"update","t":2,"session":"s","data":"AQHA')
    const rec = await readRecording(path)
    expect(rec.truncated).toBe(true)
    expect(rec.records).toHaveLength(1)
    expect(rec.end).toBeNull()
    // the same bytes followed by a newline are a malformed record, not a crash
    await appendFile(path, '\n')
    await expect(readRecording(path)).rejects.toThrow(/line 4: malformed JSON/)
    // a whole last record without its newline is kept
    const whole = await writeRecording('whole.jsonl', [])
    await appendFile(whole, encodeRecord({ type: 'close', t: 3, session: 's' }).trimEnd())
    expect((await readRecording(whole)).records).toEqual([{ type: 'close', t: 3, session: 's' }])
  })
})

describe('recorder', () => {
  it('writes a file for a chosen document and returns null for the others', async () => {
    const r = recorder({ documents: ['team/notes ü'], sampleRate: 0 })
    expect(r.start('other', emptyDoc())).toBeNull()
    const base = baseState()
    const before = Date.now()
    const rec = r.start('team/notes ü', base)!
    const after = Date.now()
    expect(rec).not.toBeNull()
    expect(rec.path.startsWith(dir)).toBe(true)
    expect(rec.path.slice(dir.length + 1)).toMatch(/^team_notes__-\d{13}-[0-9a-f]{8}\.jsonl$/)
    const update = new Editor(5, base).edit(d => d.getText('t').insert(0, 'x'))
    rec.open('s1', { user: 'ann', role: 'admin', protocol: 'native' })
    rec.update('s1', update)
    rec.close('s1')
    await rec.end(update)
    expect(rec.active).toBe(false)
    const read = await readRecording(rec.path)
    expect(read.header).toMatchObject({ document: 'team/notes ü', server: 'concord test', reason: 'all' })
    // stamped when it started, and named after that moment
    expect(read.header.startedAt).toBeGreaterThanOrEqual(before)
    expect(read.header.startedAt).toBeLessThanOrEqual(after)
    expect(rec.path).toContain(`-${read.header.startedAt}-`)
    expect(read.base).toEqual(base)
    expect(read.records.map(x => x.type)).toEqual(['open', 'update', 'close'])
    expect(read.records[0]).toMatchObject({ session: 's1', user: 'ann', role: 'admin', protocol: 'native' })
    expect(read.end!.update).toEqual(update)
    // calls after the end are ignored
    rec.update('s1', update)
    await rec.end(update)
    expect((await readRecording(rec.path)).records).toHaveLength(3)
    await r.close()
    expect(r.start('team/notes ü', base)).toBeNull()
  })

  it('samples other documents with the injected random source, once per load', async () => {
    const draws = [0.1, 0.9, 0.24, 0.25]
    let calls = 0
    const r = recorder({ documents: ['always'], sampleRate: 0.25, random: () => draws[calls++]! })
    const chosen = [r.start('a', emptyDoc()), r.start('b', emptyDoc()), r.start('always', emptyDoc()), r.start('c', emptyDoc()), r.start('d', emptyDoc())]
    expect(chosen.map(c => c !== null)).toEqual([true, false, true, true, false])
    expect(calls).toBe(4) // listed documents draw nothing
    await r.close()
    const reasons = await Promise.all(chosen.filter(c => c !== null).map(async c => [(await readRecording(c.path)).header.document, (await readRecording(c.path)).header.reason]))
    expect(Object.fromEntries(reasons)).toEqual({ a: 'sampled', always: 'all', c: 'sampled' })
  })

  it('validates its options at creation', () => {
    expect(() => recorder({ sampleRate: 1.5 })).toThrow(TypeError)
    expect(() => recorder({ sampleRate: Number.NaN })).toThrow(TypeError)
    expect(() => recorder({ maxBytesPerFile: 0 })).toThrow(TypeError)
    expect(() => recorder({ dir: '' })).toThrow(TypeError)
  })

  it('copies what it is given (callers reuse their buffers)', async () => {
    const r = recorder()
    const rec = r.start('doc', emptyDoc())!
    const buffer = new Uint8Array([1, 2, 3, 4])
    rec.update('s', buffer.subarray(1, 3))
    buffer.fill(9)
    await rec.end(emptyDoc())
    const read = await readRecording(rec.path)
    expect(read.records[0]).toMatchObject({ type: 'update', data: encodeBase64(new Uint8Array([2, 3])) })
  })

  it('stops at the byte cap with a warning, keeping what fits, without an end record', async () => {
    const { logger, records } = capturingLogger()
    const r = recorder({ logger, maxBytesPerFile: 1000 })
    const rec = r.start('doc', emptyDoc())!
    const data = new Uint8Array(60).fill(7)
    for (let i = 0; i < 50; i++) rec.update('s', data)
    expect(rec.active).toBe(false)
    await rec.end(emptyDoc())
    const size = (await stat(rec.path)).size
    expect(size).toBeLessThanOrEqual(1000)
    expect(size).toBeGreaterThan(800)
    const read = await readRecording(rec.path)
    expect(read.end).toBeNull()
    expect(read.records.length).toBeGreaterThan(3)
    expect(read.records.length).toBeLessThan(50)
    const warnings = records.filter(x => x.level === 40)
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toMatchObject({ document: 'doc', path: rec.path, maxBytesPerFile: 1000 })
    expect(warnings[0]!.msg).toMatch(/maxBytesPerFile/)
  })

  it('keeps every record, in order, through the write stream\'s backpressure', async () => {
    const r = recorder()
    const rec = r.start('doc', emptyDoc())!
    const n = 3000
    for (let i = 0; i < n; i++) {
      rec.update(`s${i % 3}`, new Uint8Array(1500).fill(i & 0xff))
      // some records in later turns of the event loop, while earlier chunks are still being written
      if (i % 500 === 0) await new Promise(resolve => setImmediate(resolve))
    }
    await rec.end(emptyDoc())
    const read = await readRecording(rec.path)
    expect(read.records).toHaveLength(n)
    read.records.forEach((x, i) => expect(x).toMatchObject({ session: `s${i % 3}`, data: encodeBase64(new Uint8Array(1500).fill(i & 0xff)) }))
    expect(read.end).not.toBeNull()
  })

  it('never throws into the caller when the file cannot be written', async () => {
    const { logger, records } = capturingLogger()
    const notADir = join(dir, 'file')
    await writeFile(notADir, 'x')
    const r = createRecorder({ dir: notADir, documents: ['doc'], logger, serverName: 'concord test' })
    const rec = r.start('doc', emptyDoc())!
    rec.open('s', { user: null, role: 'write', protocol: 'native' })
    rec.update('s', new Uint8Array([1]))
    const deadline = Date.now() + 5_000
    while (rec.active && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 5))
    expect(rec.active).toBe(false)
    rec.update('s', new Uint8Array([1]))
    await rec.end(emptyDoc())
    await r.close()
    const warnings = records.filter(x => x.level === 40)
    expect(warnings.map(x => x.msg)).toEqual(['recording stopped: the file could not be written'])
    expect(warnings[0]).toMatchObject({ document: 'doc', err: { code: 'EEXIST' } })
    // a recording that ends before the failure is known is reported the same way
    const later = r.start('doc', emptyDoc())
    expect(later).toBeNull() // the recorder is closed
    const r2 = createRecorder({ dir: notADir, documents: ['doc'], logger, serverName: 'concord test' })
    await r2.start('doc', emptyDoc())!.end(emptyDoc())
    expect(records.filter(x => x.level === 40)).toHaveLength(2)
  })

  it('marks a refusal on the update, or writes a refused record once the update is on its way to disk', async () => {
    const r = recorder()
    const rec = r.start('doc', emptyDoc())!
    rec.update('s', new Uint8Array([0, 0]))
    rec.update('s', new Uint8Array([0, 0]), 'CONCORD_ERR_AUTH_FORBIDDEN')
    rec.update('s', new Uint8Array([0, 0]))
    rec.update('t', new Uint8Array([0, 0]))
    rec.refused('s', 'CONCORD_ERR_UPDATE_OUT_OF_ORDER') // in the same turn: marked in place
    rec.update('s', new Uint8Array([0, 0]))
    await new Promise(resolve => setImmediate(resolve))
    await new Promise(resolve => setImmediate(resolve))
    rec.refused('s', 'CONCORD_ERR_LIMIT_DOCUMENT_SIZE') // later: a record of its own
    rec.refused('nobody', 'CONCORD_ERR_LIMIT_DOCUMENT_SIZE') // no update to mark: ignored
    await rec.end(emptyDoc())
    const text = await readFile(rec.path, 'utf8')
    expect(text.split('\n').filter(l => l.includes('"type":"refused"'))).toHaveLength(1)
    const read = await readRecording(rec.path)
    expect(read.records.map(x => x.type === 'update' ? `${x.session}:${x.refused ?? 'ok'}` : x.type)).toEqual([
      's:ok', 's:CONCORD_ERR_AUTH_FORBIDDEN', 's:CONCORD_ERR_UPDATE_OUT_OF_ORDER', 't:ok', 's:CONCORD_ERR_LIMIT_DOCUMENT_SIZE', 'refused',
    ])
  })

  it('closing the recorder closes open recordings without an end record', async () => {
    const r = recorder()
    const rec = r.start('doc', emptyDoc())!
    rec.open('s', { user: null, role: 'write', protocol: 'native' })
    await r.close()
    expect(rec.active).toBe(false)
    const read = await readRecording(rec.path)
    expect(read.records).toHaveLength(1)
    expect(read.end).toBeNull()
  })

  it('derives file names from document names', () => {
    expect(fileStem('a/b c.d-e_f')).toBe('a_b_c.d-e_f')
    expect(fileStem('😀x')).toBe('_x')
    expect(fileStem('..')).toBe('..')
    expect(fileStem('x'.repeat(300))).toHaveLength(128)
  })
})

describe('replay', () => {
  it('re-runs a recorded session against a fresh server and matches the end state', async () => {
    const r = recorder()
    const base = baseState()
    const rec = r.start('doc', base)!
    const server = scriptedSession(rec, base)
    await rec.end(Y.encodeStateAsUpdate(server))
    const report = await replayRecording(rec.path)
    expect(report).toMatchObject({
      document: 'doc', path: rec.path, sessions: 2, updatesSent: 6, updatesSkippedRefused: 0, updatesRefusedByReplay: 0,
      awareness: 2, truncated: false, compared: true, matches: true, warnings: [],
    })
    expect(report.difference).toBeUndefined()
    expect(report.actualStateVector).toEqual({ 1000: 6, 1001: 8, 1002: 3 })
    expect(report.expectedStateVector).toEqual(report.actualStateVector)
    expect(formatReplayReport(report)).toMatch(/2 sessions, 6 updates sent, 2 awareness updates, \d+ ms\nResult: MATCH/)
  })

  it('reports a mismatch when the end state holds an edit no update carried', async () => {
    const r = recorder()
    const base = baseState()
    const rec = r.start('doc', base)!
    const server = scriptedSession(rec, base)
    const intruder = new Editor(4242, Y.encodeStateAsUpdate(server))
    Y.applyUpdate(server, intruder.edit(d => d.getText('t').insert(0, 'unrecorded ')))
    await rec.end(Y.encodeStateAsUpdate(server))
    const report = await replayRecording(rec.path)
    expect(report.compared).toBe(true)
    expect(report.matches).toBe(false)
    expect(report.difference).toMatch(/state vectors differ .*client 4242: 11 recorded, 0 replayed/)
    expect(report.expectedStateVector).toMatchObject({ 4242: 11 })
    expect(report.actualStateVector[4242]).toBeUndefined()
    expect(formatReplayReport(report)).toMatch(/Result: MISMATCH: state vectors differ/)
  })

  it('reports a mismatch in deletions alone (a deletion advances no clock)', async () => {
    const r = recorder()
    const base = baseState()
    const rec = r.start('doc', base)!
    const server = scriptedSession(rec, base)
    const deleter = new Editor(5555, Y.encodeStateAsUpdate(server))
    Y.applyUpdate(server, deleter.edit(d => d.getText('t').delete(0, 2)))
    await rec.end(Y.encodeStateAsUpdate(server))
    const report = await replayRecording(rec.path)
    expect(report.matches).toBe(false)
    expect(report.expectedStateVector).toEqual(report.actualStateVector)
    expect(report.difference).toMatch(/^delete sets differ \(client 1002: /)
  })

  it('skips and counts updates the recording server refused', async () => {
    const r = recorder()
    const base = baseState()
    const rec = r.start('doc', base)!
    const server = scriptedSession(rec, base)
    const reader = new Editor(77, Y.encodeStateAsUpdate(server))
    rec.open('c3/doc', { user: 'rita', role: 'read', protocol: 'native' })
    rec.update('c3/doc', reader.edit(d => d.getText('t').insert(0, 'not allowed ')), 'CONCORD_ERR_AUTH_FORBIDDEN')
    rec.update('c3/doc', reader.edit(d => d.getMap('m').set('status', 'hijacked')))
    rec.refused('c3/doc', 'CONCORD_ERR_AUTH_FORBIDDEN')
    await rec.end(Y.encodeStateAsUpdate(server))
    const report = await replayRecording(rec.path)
    expect(report).toMatchObject({ sessions: 3, updatesSent: 6, updatesSkippedRefused: 2, matches: true })
    expect(formatReplayReport(report)).toMatch(/6 updates sent, 2 skipped \(refused when recorded\)/)
  })

  it('replays a recording without an end record but does not compare it', async () => {
    const r = recorder()
    const base = baseState()
    const rec = r.start('doc', base)!
    scriptedSession(rec, base)
    await r.close() // as if the server stopped before the document was unloaded
    const report = await replayRecording(rec.path)
    expect(report).toMatchObject({ compared: false, matches: null, expectedStateVector: null, updatesSent: 6, sessions: 2 })
    expect(report.actualStateVector).toEqual({ 1000: 6, 1001: 8, 1002: 3 })
    expect(formatReplayReport(report)).toMatch(/Result: NOT COMPARED: the recording has no end record/)
  })

  it('replays a crashed recording (cut-off last line) and says so', async () => {
    const alice = new Editor(9)
    const u1 = alice.edit(d => d.getText('t').insert(0, 'a'))
    const path = await writeRecording('crashed.jsonl', [
      { type: 'open', t: 0, session: 's', user: null, role: 'write', protocol: 'native' },
      { type: 'update', t: 1, session: 's', data: encodeBase64(u1) },
    ])
    await appendFile(path, '{"type":"update","t":2,"ses')
    const report = await replayRecording(path)
    expect(report).toMatchObject({ truncated: true, compared: false, matches: null, updatesSent: 1, actualStateVector: { 9: 1 } })
    expect(formatReplayReport(report)).toMatch(/last line of the recording was cut off/)
  })

  it('honours the recorded gaps in realtime mode, and opens sessions that sent before their open record', async () => {
    const alice = new Editor(9)
    const u1 = alice.edit(d => d.getText('t').insert(0, 'a'))
    const u2 = alice.edit(d => d.getText('t').insert(1, 'b'))
    const path = await writeRecording('realtime.jsonl', [
      { type: 'update', t: 40, session: 's', data: encodeBase64(u1) },
      { type: 'update', t: 80, session: 's', data: encodeBase64(u2) },
      { type: 'end', t: 90, update: encodeBase64(Y.encodeStateAsUpdate(alice.doc)) },
    ])
    const report = await replayRecording(path, { speed: 'realtime' })
    expect(report.matches).toBe(true)
    expect(report.durationMs).toBeGreaterThanOrEqual(80)
    expect(report.warnings).toEqual([expect.stringMatching(/session s sent before its open record/)])
  })

  it('reports updates the replay server refuses although the recording accepted them', async () => {
    const path = await writeRecording('garbage.jsonl', [
      { type: 'open', t: 0, session: 's', user: null, role: 'write', protocol: 'native' },
      { type: 'update', t: 1, session: 's', data: encodeBase64(new Uint8Array([1, 2, 3, 250, 250])) },
      { type: 'end', t: 2, update: encodeBase64(emptyDoc()) },
    ])
    const report = await replayRecording(path)
    expect(report).toMatchObject({ updatesSent: 1, updatesRefusedByReplay: 1, matches: true })
    expect(report.warnings.join('\n')).toMatch(/refused an update of session s \(line 4\) with CONCORD_ERR_UPDATE_MALFORMED/)
  })
})
