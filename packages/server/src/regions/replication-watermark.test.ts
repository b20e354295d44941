import { describe, expect, it } from 'vitest'
import { ReplicationWatermark } from './replication-watermark.js'

/** An outbox whose watermark the test sets, and a record of what listeners were told. */
function setup(peers: string[]) {
  let state: { last: number; oldest: Map<string, number | null> } = { last: 0, oldest: new Map(peers.map(p => [p, null])) }
  let reads = 0
  let failing = false
  const outbox = {
    async watermark() {
      reads++
      if (failing) throw new Error('PostgreSQL is down')
      return { last: state.last, oldest: new Map(state.oldest) }
    },
  }
  const told: [number, number][] = []
  const listener = { replicated: (seq: number, regions: number) => { told.push([seq, regions]) } }
  const tracker = new ReplicationWatermark({ outbox, peers, pollMs: 1 })
  return {
    tracker, told, listener,
    set(last: number, oldest: Record<string, number | null>) { state = { last, oldest: new Map(Object.entries(oldest)) } },
    fail(on: boolean) { failing = on },
    reads: () => reads,
  }
}

const until = async (check: () => boolean): Promise<void> => {
  for (let i = 0; i < 500 && !check(); i++) await new Promise(r => setTimeout(r, 2))
  expect(check()).toBe(true)
}

describe('ReplicationWatermark', () => {
  it('tells a sender its update is in every region once each peer\'s oldest waiting row is past the mark taken after the ack', async () => {
    const t = setup(['us', 'ap'])
    // rows up to 10 exist; us still waits for 7, ap for 9
    t.set(10, { us: 7, ap: 9 })
    t.tracker.acked(t.listener, 1)
    await until(() => t.reads() >= 2)
    expect(t.told).toEqual([])
    // us caught up past the mark (its oldest is 11, a row appended after the ack); ap has nothing waiting
    t.set(12, { us: 11, ap: 9 })
    await until(() => t.told.length === 1)
    expect(t.told).toEqual([[1, 2]])
    t.set(12, { us: 11, ap: null })
    await until(() => t.told.length === 2)
    expect(t.told).toEqual([[1, 2], [1, 3]])
    // settled: nothing more is read for it
    expect(t.tracker.waiting).toBe(0)
  })

  it('keeps the mark of the first read after the ack: later rows do not hold an update back', async () => {
    const t = setup(['us'])
    t.set(5, { us: 5 })
    t.tracker.acked(t.listener, 3)
    await until(() => t.reads() >= 1)
    // row 5 shipped; rows 6.. are newer than the ack and keep coming
    t.set(50, { us: 6 })
    await until(() => t.told.length === 1)
    expect(t.told).toEqual([[3, 2]])
  })

  it('survives an unreachable PostgreSQL (reads again) and ignores senders that cannot be told', async () => {
    const t = setup(['us'])
    t.fail(true)
    t.set(4, { us: null })
    t.tracker.acked(t.listener, 8)
    t.tracker.acked({}, 9)
    await until(() => t.reads() >= 3)
    expect(t.told).toEqual([])
    t.fail(false)
    await until(() => t.told.length === 1)
    expect(t.told).toEqual([[8, 2]])
    t.tracker.close()
  })
})
