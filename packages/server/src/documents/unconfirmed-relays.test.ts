import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { UnconfirmedRelays } from './unconfirmed-relays.js'

/** A storage stand-in whose appends the test settles by hand (the bookkeeping is under test, not storage). */
function setup(confirmTimeoutMs = 1_000): {
  relays: UnconfirmedRelays
  appends: { update: Uint8Array; writer: string | null; resolve: () => void; reject: (e: unknown) => void }[]
  failures: unknown[]
} {
  const appends: { update: Uint8Array; writer: string | null; resolve: () => void; reject: (e: unknown) => void }[] = []
  const failures: unknown[] = []
  const relays = new UnconfirmedRelays({
    append: (update, writer) => new Promise<void>((resolve, reject) => appends.push({ update, writer, resolve, reject })),
    fail: err => failures.push(err),
  }, { confirmTimeoutMs })
  return { relays, appends, failures }
}

const bytes = (n: number): Uint8Array => new Uint8Array([n])
const flush = (): Promise<void> => new Promise(resolve => queueMicrotask(resolve))

describe('UnconfirmedRelays: other nodes\' updates applied before they were durable', () => {
  beforeEach(() => { vi.useFakeTimers() })
  afterEach(() => { vi.useRealTimers() })

  it('a confirmation settles what waited for it, in order; nothing is appended here', () => {
    const { relays, appends } = setup()
    relays.add('a:1', bytes(1), 'u')
    relays.add('a:2', bytes(2), 'u')
    const settled: string[] = []
    relays.whenSettled(1, () => settled.push('after 1'), () => settled.push('failed'))
    relays.whenSettled(2, () => settled.push('after 2'), () => settled.push('failed'))
    relays.confirm(['a:2'])
    expect(settled).toEqual([])
    relays.confirm(['a:1', 'b:9'])
    expect(settled).toEqual(['after 1', 'after 2'])
    expect(relays.size).toBe(0)
    vi.advanceTimersByTime(5_000)
    expect(appends).toEqual([])
  })

  it('what waits for nothing unconfirmed runs at once', () => {
    const { relays } = setup()
    const before = relays.mark()
    relays.add('a:1', bytes(1), null)
    let ran = false
    relays.whenSettled(before, () => { ran = true }, () => undefined)
    expect(ran).toBe(true)
  })

  it('an update unconfirmed past the bound is appended here, once, with its writer; its waiters settle when that append is durable', async () => {
    const { relays, appends } = setup(1_000)
    relays.add('a:1', bytes(1), 'alice')
    vi.advanceTimersByTime(500)
    relays.add('a:2', bytes(2), 'bob')
    const settled: number[] = []
    relays.whenSettled(relays.mark(), () => settled.push(2), () => undefined)
    vi.advanceTimersByTime(500)
    expect(appends.map(a => [a.update[0], a.writer])).toEqual([[1, 'alice']])
    vi.advanceTimersByTime(500)
    expect(appends.map(a => [a.update[0], a.writer])).toEqual([[1, 'alice'], [2, 'bob']])
    appends[1]!.resolve()
    await flush()
    expect(settled).toEqual([]) // a:1 is still outstanding
    appends[0]!.resolve()
    await flush()
    expect(settled).toEqual([2])
    expect(relays.size).toBe(0)
    expect(relays.persisted).toBe(2)
  })

  it('persist appends the unconfirmed updates up to a mark now; a confirmation during the append settles them too', async () => {
    const { relays, appends } = setup()
    relays.add('a:1', bytes(1), null)
    relays.add('b:1', bytes(2), null)
    const mark = relays.mark()
    relays.add('a:2', bytes(3), null)
    relays.persist(mark)
    relays.persist(mark) // not twice
    expect(appends.map(a => a.update[0])).toEqual([1, 2])
    const settled: string[] = []
    relays.whenSettled(mark, () => settled.push('barrier'), () => settled.push('failed'))
    relays.confirm(['a:1'])
    appends[1]!.resolve()
    await flush()
    expect(settled).toEqual(['barrier'])
    // the confirmed entry's late append changes nothing
    appends[0]!.resolve()
    await flush()
    expect(relays.size).toBe(1)
  })

  it('a failed append fails the document and the waiters that needed it, not earlier ones', async () => {
    const { relays, appends, failures } = setup()
    relays.add('a:1', bytes(1), null)
    const first = relays.mark()
    relays.add('a:2', bytes(2), null)
    const outcome: string[] = []
    relays.whenSettled(first, () => outcome.push('first ok'), () => outcome.push('first failed'))
    relays.whenSettled(relays.mark(), () => outcome.push('second ok'), () => outcome.push('second failed'))
    relays.persist()
    appends[1]!.reject(new Error('disk gone'))
    await flush()
    expect(outcome).toEqual(['second failed'])
    expect(failures).toHaveLength(1)
    appends[0]!.resolve()
    await flush()
    expect(outcome).toEqual(['second failed', 'first ok'])
  })

  it('settled() resolves once everything applied so far is durable; close() releases waiters and stops the timer', async () => {
    const { relays, appends } = setup()
    relays.add('a:1', bytes(1), null)
    let flushed = false
    void relays.settled().then(() => { flushed = true })
    relays.add('a:2', bytes(2), null) // after the call: not waited for
    relays.confirm(['a:1'])
    await flush()
    expect(flushed).toBe(true)
    const outcome: string[] = []
    relays.whenSettled(relays.mark(), () => outcome.push('ok'), () => outcome.push('released'))
    relays.close()
    expect(outcome).toEqual(['released'])
    vi.advanceTimersByTime(5_000)
    expect(appends).toEqual([])
    relays.add('a:3', bytes(3), null)
    expect(relays.size).toBe(0)
  })
})
