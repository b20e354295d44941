import { describe, expect, it } from 'vitest'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { connectClient, waitFor } from './helpers.js'
import { cleanupAfterEach } from './cleanup.js'
import { spawnServer } from './server-process.js'

const BIN = fileURLToPath(new URL('../packages/server/bin/concord.js', import.meta.url))
const { procs, clients, dirs } = cleanupAfterEach()

function replay(file: string): { code: number | null; out: string } {
  const r = spawnSync(process.execPath, [BIN, 'replay', file], { encoding: 'utf8', timeout: 60_000 })
  return { code: r.status, out: `${r.stdout}${r.stderr}` }
}

describe('recording and concord replay', () => {
  it('a recorded session (two writers, presence, concurrent edits) replayed against a fresh server reproduces the same document; a tampered recording does not', async () => {
    const data = mkdtempSync(join(tmpdir(), 'concord-rec-data-'))
    const recordings = mkdtempSync(join(tmpdir(), 'concord-rec-'))
    dirs.push(data, recordings)
    const srv = await spawnServer(['--data', data, '--port', '0', '--record-dir', recordings, '--record-documents', 'recorded'])
    procs.push(srv)
    const a = connectClient(srv.url)
    const b = connectClient(srv.url)
    clients.push(a, b)
    const ha = a.open('recorded')
    const hb = b.open('recorded')
    const other = a.open('not-recorded')
    await Promise.all([ha.whenSynced(), hb.whenSynced(), other.whenSynced()])
    ha.awareness.setLocalStateField('user', { name: 'ada' })
    for (let i = 0; i < 20; i++) {
      // concurrent edits at the same place, and map writes to the same key
      ha.doc.getText('t').insert(0, `a${i} `)
      hb.doc.getText('t').insert(0, `b${i} `)
      ha.doc.getMap('m').set('last', `a${i}`)
      hb.doc.getMap('m').set('last', `b${i}`)
      if (i % 5 === 4) hb.doc.getText('t').delete(0, 2)
      // editing pace, so the recording holds many interleaved frames; not synchronisation
      await new Promise(r => setTimeout(r, 3))
    }
    other.doc.getText('t').insert(0, 'x')
    await Promise.all([ha.whenSaved(), hb.whenSaved(), other.whenSaved()])
    await waitFor(() => ha.doc.getText('t').toString() === hb.doc.getText('t').toString(), { message: 'the writers converge' })
    const finalText = ha.doc.getText('t').toString()
    a.close()
    b.close()
    // the document unloads once its sessions are gone: its recording gets the end state
    const file = await waitFor(() => {
      const files = readdirSync(recordings)
      const f = files.find(n => n.startsWith('recorded-'))
      return f !== undefined && readFileSync(join(recordings, f), 'utf8').includes('"type":"end"') ? join(recordings, f) : undefined
    }, { message: 'the recording ended' })
    expect(readdirSync(recordings).filter(n => n.startsWith('not-recorded'))).toEqual([])
    const lines = readFileSync(file, 'utf8').trim().split('\n').map(l => JSON.parse(l) as { type: string; session?: string })
    expect(lines[0]).toMatchObject({ type: 'header', format: 'concord-recording', document: 'recorded' })
    expect(new Set(lines.filter(l => l.type === 'open').map(l => l.session)).size).toBe(2)
    expect(lines.filter(l => l.type === 'update').length).toBeGreaterThanOrEqual(40)
    expect(lines.some(l => l.type === 'awareness')).toBe(true)
    expect(finalText.length).toBeGreaterThan(0)

    const good = replay(file)
    console.log(good.out.trim())
    expect(good.out).toMatch(/MATCH/)
    expect(good.out).not.toMatch(/MISMATCH|NOT COMPARED/)
    expect(good.code).toBe(0)

    // without one of the updates, the replay no longer reaches the recorded state
    const raw = readFileSync(file, 'utf8').trim().split('\n')
    const dropAt = raw.findIndex((l, i) => i > 5 && l.includes('"type":"update"'))
    const tampered = join(recordings, 'tampered.jsonl')
    writeFileSync(tampered, `${raw.filter((_, i) => i !== dropAt).join('\n')}\n`)
    const bad = replay(tampered)
    expect(bad.out).toMatch(/MISMATCH/)
    expect(bad.code).toBe(1)
  })

  it('refuses a file that is not a recording, with the line that is wrong', () => {
    const dir = mkdtempSync(join(tmpdir(), 'concord-rec-bad-'))
    dirs.push(dir)
    const file = join(dir, 'x.jsonl')
    writeFileSync(file, '{"type":"header","format":"something-else","version":1}\n')
    const r = replay(file)
    expect(r.code).toBe(2)
    expect(r.out).toMatch(/^concord replay: .*line 1: .*not a Concord recording/)
    expect(r.out).not.toMatch(/ at /) // a message, not a stack trace
  })
})
