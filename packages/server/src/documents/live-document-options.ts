import type { ExtensionHooks } from './extension-hooks.js'
import type { Logger } from 'pino'
import type { StorageAdapter } from '../storage/storage-adapter.js'
import type { Backplane } from '../backplane/backplane.js'
import type { MergeWorker } from './merge-worker.js'
import type { DocumentEvent, DocumentEventHandler, DocumentMetrics, DocumentRecorder, DocumentTracer, ReplicationTracker } from './ports.js'
import type { VersionPolicy } from './versions.js'

/** `D`: the document type `onFailed` is given (`LiveDocument`; a parameter, so this file does not import it). */
export interface LiveDocumentOptions<D = unknown> {
  storage: StorageAdapter
  /** Server extensions' hooks (load, beforeChange, change, store). */
  hooks?: ExtensionHooks
  logger: Logger
  presenceThrottleMs: number
  compactEveryUpdates: number
  compactEveryBytes: number
  /** Updates that would make the document larger than this (approximately) are refused. */
  maxDocumentBytes?: number
  /** Largest presence (awareness) state of one client, as JSON bytes (default 64 KiB). */
  maxPresenceBytes?: number
  /** Bytes of document copies a second for checking updates by trial (default 8 MiB; a burst of four seconds' worth). */
  maxUpdateCheckBytesPerSecond?: number
  /** Called once when the document can no longer guarantee durability (storage failed). */
  onFailed?: (document: D, error: unknown) => void
  /** Other nodes: what this node applies is published, what they apply is applied here. */
  backplane?: Backplane
  /**
   * How long another node's update relayed before it was durable may stay unconfirmed before this
   * node appends it itself (ms; default 1,000: `DEFAULT_RELAY_CONFIRM_TIMEOUT_MS`).
   */
  relayConfirmTimeoutMs?: number
  metrics?: DocumentMetrics
  /** Spans of load, apply and append (without it: none). */
  tracer?: DocumentTracer
  /** Records the inbound messages of the documents it chooses (`concord replay` re-runs them). */
  recorder?: DocumentRecorder
  /** When versions are saved on their own (checkpoints) and kept; without it, no checkpoint and no event. */
  versions?: VersionPolicy
  /** document.changed (each durable update), document.created (its first), version.created. */
  onEvent?: DocumentEventHandler
  /** Where diffs and merges of a large document's kept state run for sync replies (without it: on the main thread). */
  mergeWorker?: MergeWorker
  /** With several regions: told of each ack, so the sender learns when its update is durable in more regions. */
  replication?: ReplicationTracker
}

/** @deprecated the document's events are `DocumentEvent`. */
export type HistoryEvent = DocumentEvent

/** @deprecated `VersionPolicy` and `onEvent` in `LiveDocumentOptions`. */
export interface HistoryOptions extends VersionPolicy {
  onEvent?: DocumentEventHandler
}
