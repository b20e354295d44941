import type { ConcordClient, DocHandle } from '@concord/client'
import { h } from './dom.js'

/** What the status pill shows; `data-status` on the element carries it for styles and tests. */
export type SaveState = 'connecting' | 'saved' | 'saving' | 'reconnecting' | 'offline' | 'error'

/**
 * The one place that turns the SDK's state into what a person needs to know:
 * - `offline`: no working connection for 3 s (the SDK's `offline`), edits are kept and sent later;
 * - `reconnecting`: the connection dropped less than 3 s ago;
 * - `connecting`: the document has not been synced with the server yet (first load);
 * - `saving`: local edits wait for the server's durable ack (`pendingCount > 0`);
 * - `saved`: everything is durable on the server and the document is in sync;
 * - `error`: the server refused to open the document.
 */
export function saveState(client: ConcordClient, handle: DocHandle): SaveState {
  if (handle.status === 'error') return 'error'
  if (client.offline || handle.offline) return 'offline'
  if (client.status !== 'connected') return handle.synced || hasBeenSynced.has(handle) ? 'reconnecting' : 'connecting'
  if (!handle.synced) return hasBeenSynced.has(handle) ? 'reconnecting' : 'connecting'
  return handle.pendingCount > 0 ? 'saving' : 'saved'
}

const hasBeenSynced = new WeakSet<DocHandle>()

const LABELS: Record<SaveState, string> = {
  connecting: 'Connecting…',
  saved: 'Saved',
  saving: 'Saving…',
  reconnecting: 'Reconnecting…',
  offline: 'Offline',
  error: 'Unavailable',
}

/**
 * A status pill for one document. `saving` is shown only when a save takes longer than a moment
 * (an ack normally arrives within milliseconds, and a pill flickering on every keystroke says
 * nothing); every other change shows at once.
 */
export function createStatusIndicator(client: ConcordClient, handle: DocHandle, readOnly: () => boolean): { element: HTMLElement; destroy(): void } {
  const label = h('span', { class: 'status-label' })
  const element = h('div', { class: 'status', role: 'status', 'aria-live': 'polite', 'data-testid': 'save-status' },
    h('span', { class: 'status-dot', 'aria-hidden': 'true' }), label)
  let shown: SaveState | null = null
  let savingTimer: ReturnType<typeof setTimeout> | null = null

  const show = (state: SaveState): void => {
    const pending = handle.pendingCount
    const text = state === 'saved' && readOnly() ? 'Up to date'
      : state === 'offline' && pending > 0 ? `Offline · ${pending} unsaved edit${pending === 1 ? '' : 's'}`
        : LABELS[state]
    element.title = state === 'offline'
      ? 'No connection. Your edits are kept on this device and sent when the connection is back.'
      : state === 'saved' ? (readOnly() ? 'You are viewing the latest version.' : 'Every change is stored on the server.') : ''
    if (label.textContent !== text) label.textContent = text
    if (shown === state) return
    shown = state
    element.dataset.status = state
  }

  const update = (): void => {
    if (handle.synced) hasBeenSynced.add(handle)
    const state = saveState(client, handle)
    if (state === 'saving' && shown === 'saved') {
      savingTimer ??= setTimeout(() => {
        savingTimer = null
        show(saveState(client, handle))
      }, 400)
      return
    }
    if (savingTimer !== null) clearTimeout(savingTimer)
    savingTimer = null
    show(state)
  }

  const clientEvents = ['status', 'offline', 'online'] as const
  const handleEvents = ['status', 'saved', 'unsaved', 'ack', 'offline', 'online', 'synced', 'role', 'error'] as const
  for (const e of clientEvents) client.on(e, update)
  for (const e of handleEvents) handle.on(e, update)
  // the count of unsaved edits shown while offline
  handle.doc.on('update', update)
  update()
  return {
    element,
    destroy() {
      if (savingTimer !== null) clearTimeout(savingTimer)
      for (const e of clientEvents) client.off(e, update)
      for (const e of handleEvents) handle.off(e, update)
      handle.doc.off('update', update)
    },
  }
}
