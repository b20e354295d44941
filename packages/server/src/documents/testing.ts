/**
 * What the server's unit tests share (not built into dist: see packages/server/tsconfig.json).
 */
import type { ConcordError, Role } from '@concord/protocol'
import type { DocumentSession } from './document-session.js'
import type { SharedMessage } from './shared-message.js'

/** A document session that records what the document sends it. */
export class FakeSession implements DocumentSession {
  readonly protocol = 'native'
  readonly openedAt = Date.now()
  readonly updates: Uint8Array[] = []
  readonly awareness: Uint8Array[] = []
  readonly acks: number[] = []
  readonly errors: { code: string; seq: number; closed: boolean }[] = []
  constructor(readonly id: string, readonly role: Role = 'write', readonly userId: string | null = id) {}
  sendUpdate(m: SharedMessage): void { this.updates.push(m.payload) }
  sendUpdates(ms: readonly SharedMessage[]): void { for (const m of ms) this.sendUpdate(m) }
  sendAwareness(m: SharedMessage): void { this.awareness.push(m.payload) }
  ack(seq: number): void { this.acks.push(seq) }
  documentError(e: ConcordError, seq: number, closed: boolean): void { this.errors.push({ code: e.code, seq, closed }) }
  accessChanged(): void { /* no access control in these tests */ }
  /** The codes of the errors so far, in order. */
  get errorCodes(): string[] { return this.errors.map(e => e.code) }
}

/** Seeded PRNG (mulberry32), so that a failing random run can be reproduced from its seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * Resolves once `condition` holds (checked after each turn of the event loop, then every few
 * milliseconds); rejects with `message` after `timeoutMs`. What a test waits for, instead of a
 * fixed sleep.
 */
export async function until(condition: () => boolean | Promise<boolean>, message = 'condition', timeoutMs = 5_000): Promise<void> {
  const deadline = performance.now() + timeoutMs
  for (let i = 0; ; i++) {
    if (await condition()) return
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${message}`)
    await new Promise(resolve => i < 10 ? setImmediate(resolve) : setTimeout(resolve, 5))
  }
}
