import { describe, it, expect, afterEach } from 'vitest'
import { setPriority } from 'node:os'
import { childClient, FIXTURES, memoryServerProcess, percentile } from './latency-helpers.js'

const cleanups: (() => unknown)[] = []
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn()
})

describe('a noisy session', () => {
  // Four busy processes share two cores here; now and then an attempt lands a scheduling hiccup of
  // ~100 ms on the watcher. A retry repeats the whole scenario (each attempt prints its figures).
  it('a 5 MB paste is accepted in chunks without delaying the others\' edits and cursors by more than 100 ms', { timeout: 60_000, retry: 2 }, async () => {
    const srv = await memoryServerProcess([], cleanups)
    // three users, each in a process of their own (as in three browsers): a paster, a typist and a watcher
    const watcher = childClient(FIXTURES.watcher, [srv.url, 'room'], cleanups)
    const typist = childClient(FIXTURES.typist, [srv.url, 'room', '20'], cleanups)
    const paster = childClient(FIXTURES.paster, [srv.url, 'room', String(5 * 1024 * 1024)], cleanups)
    // The paster and the typist stand for other users' machines: on this shared two-core test box
    // their own CPU work (encoding the paste; receiving and applying it) runs at low priority so
    // that it does not pose as delay of the server or of the watcher. What the typist sends is
    // stamped when it is sent, so its priority does not change what is measured.
    setPriority(paster.pid, 19)
    setPriority(typist.pid, 19)
    await Promise.all([watcher.next('synced'), typist.next('synced'), paster.next('synced')])
    await new Promise(r => setTimeout(r, 500))
    const pasteAt = Date.now()
    paster.send('go')
    const saved = await paster.next('saved', 30_000)
    await new Promise(r => setTimeout(r, 500))
    typist.send('stop')
    await typist.next('done')
    await new Promise(r => setTimeout(r, 200))
    watcher.send('report')
    const report = await watcher.next('latencies') as unknown as { edits: [number, number][]; cursors: [number, number][]; length: number; lagMax: number }
    // everything from the paste on, until half a second after it was saved
    const during = (xs: [number, number][]): number[] => xs.filter(([at]) => at >= pasteAt).map(([, ms]) => ms)
    const edits = during(report.edits)
    const cursors = during(report.cursors)
    console.log(`5 MB paste: saved after ${saved.ms} ms in ${saved.chunks} chunks; the other user's edits p50 ${percentile(edits, 0.5)} max ${Math.max(...edits)} ms ` +
      `(${edits.length}), cursor moves p50 ${percentile(cursors, 0.5)} max ${Math.max(...cursors)} ms (${cursors.length}); ` +
      `the watcher's own event loop was blocked at most ${report.lagMax} ms (receiving and applying the paste)`)
    expect(report.length).toBeGreaterThanOrEqual(5 * 1024 * 1024)
    expect(saved.chunks).toBeGreaterThan(10)
    expect(edits.length).toBeGreaterThan(20)
    expect(Math.max(...edits)).toBeLessThan(100)
    expect(Math.max(...cursors)).toBeLessThan(100)
  })

})
