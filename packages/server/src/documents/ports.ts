/**
 * What the documents layer needs from the edge (ARCHITECTURE.md section 10): metrics, traces,
 * recordings and events reach documents through these small interfaces, which ops/ implements
 * structurally (`ServerMetrics`, the tracing helpers of ops/tracing.ts, `Recorder`, the webhooks'
 * emit). documents/ imports nothing from ops/.
 */
import type { Role } from '@concord/protocol'

/** A histogram as documents observe it (seconds). */
export interface ObservedDuration {
  observe(value: number): void
}

/** A counter as documents count it. */
export interface CountedEvent {
  inc(): void
}

/** Exactly what documents observe (`ServerMetrics` implements it). */
export interface DocumentMetrics {
  readonly updatesApplied: CountedEvent
  readonly updateApply: ObservedDuration
  readonly fanout: ObservedDuration
  /** From an update's arrival until it is handed to the other sessions' sockets. */
  readonly updateDelivery: ObservedDuration
  readonly storageAppend: ObservedDuration
  readonly ack: ObservedDuration
  readonly backplanePublished: CountedEvent
  readonly syncFullEncodes: CountedEvent
  presence(source: 'client' | 'backplane'): void
  compaction(result: 'done' | 'skipped' | 'failed'): void
  syncReply(source: 'kept' | 'reused' | 'encoded' | 'worker'): void
}

export type SpanAttributes = Record<string, string | number | boolean>

/**
 * Spans of document load, apply and append (ops/tracing.ts's `startSpan`/`endSpan` implement it).
 * `startSpan` returns null while tracing is off, so the edit path pays one check.
 */
export interface DocumentTracer {
  /** `parent`: a W3C traceparent (an edit's trace from another node or region) to continue. */
  startSpan(name: string, attributes: SpanAttributes, parent?: string | null): object | null
  endSpan(span: object | null, error?: unknown, attributes?: SpanAttributes): void
  /** The W3C traceparent of `span`, to send along with the update (null without a span). */
  traceparent?(span: object | null): string | null
}

/** A recorded session's description (`concord replay` re-opens it). */
export interface RecordedSessionInfo {
  user: string | null
  role: Role
  protocol: 'native' | 'y-websocket' | 'hocuspocus'
}

/** One document's recording, for this load (ops/recording implements it). */
export interface DocumentRecording {
  open(session: string, info: RecordedSessionInfo): void
  update(session: string, data: Uint8Array, refusedCode?: string): void
  refused(session: string, code: string): void
  awareness(session: string, data: Uint8Array): void
  close(session: string): void
  end(finalUpdate: Uint8Array): Promise<void>
}

/** Chooses the documents it records (`Recorder` of ops/recording implements it). */
export interface DocumentRecorder {
  start(document: string, baseUpdate: Uint8Array | (() => Uint8Array)): DocumentRecording | null
}

/** What a document tells the outside (the webhooks): each durable update, its first, and each version saved. */
export type DocumentEvent = 'document.changed' | 'document.created' | 'version.created'

export type DocumentEventHandler = (event: DocumentEvent, data: Record<string, unknown> & { document: string }) => void

/** Who can be told that its updates are durable in more regions (a native session). */
export interface ReplicationListener {
  replicated?(seq: number, regions: number): void
}

/**
 * With several regions: told of every ack (the update is durable in this region); it tells the
 * listener later how many regions hold the update (regions/replication-watermark.ts implements it).
 */
export interface ReplicationTracker {
  acked(listener: ReplicationListener, seq: number): void
}

/** Seconds since `start` (a `performance.now()` reading). */
export function secondsSince(start: number): number {
  return (performance.now() - start) / 1000
}
