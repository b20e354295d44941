import type { ConcordError, Role } from '@concord/protocol'
import type { SharedMessage } from './shared-message.js'
import type { AccessChange } from '../backplane/backplane.js'

/**
 * One socket's presence in one document, as the document sees it. The native
 * and the y-websocket transports each implement it; `LiveDocument` knows
 * nothing of frames or sockets.
 */
export interface DocumentSession {
  readonly id: string
  readonly userId: string | null
  readonly role: Role
  /** How the session is connected (`server`: the admin API's own updates). */
  readonly protocol: 'native' | 'y-websocket' | 'hocuspocus' | 'server'
  /** When the session opened the document (ms since the epoch). */
  readonly openedAt: number
  /** A document update (already applied on the server) to forward. */
  sendUpdate(message: SharedMessage): void
  /** Several updates, in order, handed to the kernel together. */
  sendUpdates(messages: readonly SharedMessage[]): void
  /** An awareness update to forward. */
  sendAwareness(message: SharedMessage): void
  /**
   * Sends from now until `uncork` reach the kernel together (one write); the two nest. Absent:
   * every send is written as it is made (see `sendTogether`).
   */
  cork?(): void
  uncork?(): void
  /** A stateless message of another session's (absent: the transport has none, as y-websocket). */
  sendStateless?(payload: string): void
  /** The update the client sent with this seq is durable. */
  ack(seq: number): void
  /** A document-scoped failure; `closed` tells whether the document ended for this session. */
  documentError(error: ConcordError, seq: number, closed: boolean): void
  /** An administrator revoked someone or changed a role: check this session again. */
  accessChanged(change: AccessChange): void
}
