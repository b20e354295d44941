import type { DocumentSession } from './document-session.js'

/**
 * A room with at least this many sessions is big: what it receives between two ticks of its
 * `RoomTick` goes out merged as one frame per recipient. Each update costs every recipient a
 * message (a socket write here, a message event and a decode there); in a room of hundreds typing
 * at once, merging the updates of a few milliseconds cuts those messages several times over for a
 * few milliseconds of latency, and keeps the room live where separate frames would swamp the
 * recipients (bench scenario `bigroom`).
 */
export const BIG_ROOM_SESSIONS = 64
/** The shortest period of a big room's tick. */
export const BIG_ROOM_WINDOW_MS = 5

/**
 * A big room's one clock for edits and presence. Every socket write costs the server a system
 * call, and on loopback much of the receiving side's network stack too: in a room of 350, a write per
 * recipient for each 5 ms window of edits and another for each presence relay made 90,000 writes a
 * second, which took most of the event loop (bench scenario `bigroom`: `writeBuffer` 10.2 s of
 * 16.7 s busy in a CPU profile of one run). On a tick, the room's merged edits and its presence go
 * out together, each recipient's socket corked around both: one write per recipient and tick.
 *
 * Requests are throttled on the leading edge: a request after a quiet period runs at once (on a
 * timer of 0), later ones wait until a period has passed since the last tick.
 */
export class RoomTick {
  readonly #period: () => number
  readonly #run: () => void
  #timer: NodeJS.Timeout | null = null
  #last = -Infinity
  #stopped = false

  /** `period`: milliseconds between two ticks (read at each request); `run`: what a tick does (must not throw). */
  constructor(period: () => number, run: () => void) {
    this.#period = period
    this.#run = run
  }

  /** Something is waiting for the next tick. */
  request(): void {
    if (this.#timer !== null || this.#stopped) return
    const wait = Math.max(0, this.#last + this.#period() - performance.now())
    this.#timer = setTimeout(this.#tick, wait)
  }

  /** Whether a tick is due. */
  get pending(): boolean {
    return this.#timer !== null
  }

  stop(): void {
    this.#stopped = true
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
  }

  readonly #tick = (): void => {
    this.#timer = null
    this.#last = performance.now()
    this.#run()
  }
}

/**
 * Runs `fn`, whose sends to `sessions` reach each socket's kernel buffer together (one write per
 * socket, however many messages `fn` sends it): every session is corked around it. Sessions that
 * leave meanwhile are uncorked too.
 */
export function sendTogether(sessions: ReadonlySet<DocumentSession>, fn: () => void): void {
  const corked: DocumentSession[] = []
  for (const s of sessions) {
    if (s.cork === undefined) continue
    s.cork()
    corked.push(s)
  }
  try {
    fn()
  } finally {
    for (const s of corked) s.uncork!()
  }
}
