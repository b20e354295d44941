import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { GroupCommit } from './group-commit.js'

/** A store whose commit takes `commitMs` (a timer), recording each batch and when each item was acked. */
function harness(options: { lingerMs: number; busyLingerMs: number; commitMs: number }) {
  const batches: number[][] = []
  const committer = new GroupCommit<number, number>(async batch => {
    batches.push(batch)
    await new Promise(r => setTimeout(r, options.commitMs))
    return batch.map(x => x * 10)
  }, options)
  const waits: number[] = []
  const enqueue = (x: number): Promise<number> => {
    const at = performance.now()
    return committer.enqueue(x).then(r => {
      waits.push(performance.now() - at)
      return r
    })
  }
  return { committer, batches, waits, enqueue }
}

describe('GroupCommit', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'setImmediate', 'Date', 'performance'] })
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  it('commits what arrives within the window together and gives each item its result', async () => {
    const h = harness({ lingerMs: 2, busyLingerMs: 10, commitMs: 1 })
    const results = [h.enqueue(1), h.enqueue(2)]
    await vi.advanceTimersByTimeAsync(1)
    results.push(h.enqueue(3))
    expect(h.batches).toEqual([])
    await vi.advanceTimersByTimeAsync(5)
    expect(h.batches).toEqual([[1, 2, 3]])
    expect(await Promise.all(results)).toEqual([10, 20, 30])
  })

  it('under a steady stream, items arriving during a commit wait out the busy window instead of chaining one-item commits', async () => {
    // one item a millisecond, each commit takes a millisecond: before the fix every commit
    // finished with one item queued and started the next at once (1,000 commits of one item)
    const h = harness({ lingerMs: 2, busyLingerMs: 10, commitMs: 1 })
    const acks: Promise<number>[] = []
    for (let i = 0; i < 1000; i++) {
      acks.push(h.enqueue(i))
      await vi.advanceTimersByTimeAsync(1)
    }
    await vi.advanceTimersByTimeAsync(50)
    expect((await Promise.all(acks)).length).toBe(1000)
    expect(h.batches.flat()).toEqual(Array.from({ length: 1000 }, (_, i) => i))
    expect(h.batches.length).toBeLessThan(120)
    // no item waits longer than the busy window and one commit (plus a timer's rounding)
    expect(Math.max(...h.waits)).toBeLessThanOrEqual(10 + 1 + 1)
  })

  it('an item that waited through a long commit is committed as soon as that commit ends', async () => {
    const h = harness({ lingerMs: 2, busyLingerMs: 10, commitMs: 30 })
    const first = h.enqueue(1)
    await vi.advanceTimersByTimeAsync(3) // the first commit starts after 2 ms and runs for 30
    const second = h.enqueue(2)
    await vi.advanceTimersByTimeAsync(29)
    expect(h.batches).toEqual([[1], [2]])
    await vi.advanceTimersByTimeAsync(30)
    expect(await first).toBe(10)
    expect(await second).toBe(20)
    expect(h.waits[1]).toBeLessThanOrEqual(30 + 30)
  })

  it('with no window (0 ms), the next batch starts as the previous one ends', async () => {
    const h = harness({ lingerMs: 0, busyLingerMs: 0, commitMs: 5 })
    void h.enqueue(1)
    await vi.advanceTimersByTimeAsync(1)
    void h.enqueue(2)
    void h.enqueue(3)
    await vi.advanceTimersByTimeAsync(4)
    expect(h.batches).toEqual([[1], [2, 3]])
  })

  it('a barrier waits for everything enqueued before it; a failed batch rejects its items and the barriers that cover them', async () => {
    let fail = false
    const committer = new GroupCommit<number, number>(async batch => {
      await new Promise(r => setTimeout(r, 1))
      if (fail) throw new Error('disk full')
      return batch
    }, { lingerMs: 2, busyLingerMs: 10 })
    const ok = committer.enqueue(1)
    const barrier = committer.barrier()
    await vi.advanceTimersByTimeAsync(5)
    await expect(ok).resolves.toBe(1)
    await expect(barrier).resolves.toBeUndefined()
    expect(committer.outstanding).toBe(0)

    fail = true
    const lost = committer.enqueue(2)
    const failedBarrier = committer.barrier()
    const settled = Promise.allSettled([lost, failedBarrier])
    await vi.advanceTimersByTimeAsync(20)
    const [a, b] = await settled
    expect(a.status).toBe('rejected')
    expect(b.status).toBe('rejected')
    expect(committer.outstanding).toBe(0)
  })
})
