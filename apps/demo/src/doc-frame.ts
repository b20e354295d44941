import type { ConcordClient, DocHandle } from '@concord/client'
import { h, icon, ICONS, toast } from './dom.js'
import { createPresence } from './presence-bar.js'
import { createStatusIndicator } from './status-indicator.js'
import { createHistoryPanel } from './history-panel.js'
import type { DocIndex, DocKind } from './doc-index.js'
import type { DemoUser, TokenSource } from './session.js'

/** What every view gets from the app. */
export interface AppContext {
  client: ConcordClient
  user: DemoUser
  tokens: TokenSource
  index: DocIndex
  /** A document just created here: its view opens with the title selected. */
  focusTitleOf: string | null
}

export interface DocFrame {
  /** The whole view: header, body, history panel. */
  element: HTMLElement
  /** Where the view puts its content. */
  body: HTMLElement
  /** Who is typing (the editor places it). */
  typing: HTMLElement
  readOnly(): boolean
  /** Called when the session's role becomes known or changes. */
  onRoleChange(listener: (readOnly: boolean) => void): void
  destroy(): void
}

/**
 * The frame around a document or board: its title (editable by writers, live for everyone),
 * a read-only badge, who is here, the save status, and the version history.
 */
export function createDocFrame(ctx: AppContext, handle: DocHandle, kind: DocKind, id: string,
  renderPreview: (update: Uint8Array) => Node): DocFrame {
  const { user, index } = ctx
  const readOnly = (): boolean => (handle.role ?? user.role) === 'read'
  const roleListeners: ((readOnly: boolean) => void)[] = []
  const cleanups: (() => void)[] = []

  const fallbackTitle = kind === 'doc' ? 'Untitled document' : 'Untitled board'
  const titleInput = h('input', {
    class: 'title-input', type: 'text', 'aria-label': kind === 'doc' ? 'Document title' : 'Board title',
    maxlength: 120, spellcheck: 'false', placeholder: fallbackTitle,
  })
  const titleText = h('h1', { class: 'title-text' })
  const commitTitle = (): void => {
    const title = titleInput.value.trim()
    if (title === '') titleInput.value = index.get(id)?.title ?? ''
    else index.rename(id, title)
  }
  titleInput.addEventListener('change', commitTitle)
  titleInput.addEventListener('keydown', e => {
    if (e.key === 'Enter') {
      e.preventDefault()
      titleInput.blur()
    } else if (e.key === 'Escape') {
      titleInput.value = index.get(id)?.title ?? ''
      titleInput.blur()
    }
  })
  const showTitle = (): void => {
    const title = index.get(id)?.title ?? fallbackTitle
    titleText.textContent = title
    if (document.activeElement !== titleInput) titleInput.value = index.get(id)?.title ?? ''
    document.title = `${title} · Concord`
  }
  cleanups.push(index.onChange(showTitle))
  showTitle()

  const badge = h('span', { class: 'badge badge-readonly', 'data-testid': 'read-only-badge', title: 'You joined as a viewer: you can follow along but not change anything.' },
    icon(ICONS.eye), 'Read only')
  const titleRow = h('div', { class: 'title-row' },
    h('span', { class: `title-icon kind-${kind}` }, icon(kind === 'doc' ? ICONS.doc : ICONS.board)),
    titleInput, titleText, badge)

  const presence = createPresence(handle, user)
  const status = createStatusIndicator(ctx.client, handle, readOnly)
  const historyButton = h('button', { type: 'button', class: 'button ghost', 'aria-expanded': 'false', 'aria-controls': `history-${id}` },
    icon(ICONS.history), h('span', { class: 'label-wide' }, 'History'))
  const history = createHistoryPanel({ handle, kind, id: `history-${id}`, readOnly, tokens: ctx.tokens, renderPreview, onClose: () => historyButton.focus() })
  historyButton.addEventListener('click', () => history.toggle())
  history.onToggle(open => historyButton.setAttribute('aria-expanded', String(open)))

  const header = h('header', { class: 'doc-header' },
    titleRow,
    h('div', { class: 'doc-meta' }, presence.avatars, status.element, historyButton))
  const body = h('div', { class: 'doc-body' })
  const element = h('section', { class: `doc-frame kind-${kind}`, 'aria-label': kind === 'doc' ? 'Document' : 'Board' },
    h('div', { class: 'doc-main' }, header, body), history.element)

  const applyRole = (): void => {
    const ro = readOnly()
    element.classList.toggle('read-only', ro)
    badge.hidden = !ro
    titleInput.hidden = ro
    titleText.hidden = !ro
    for (const l of roleListeners) l(ro)
  }
  applyRole()
  if (ctx.focusTitleOf === id) {
    ctx.focusTitleOf = null
    requestAnimationFrame(() => {
      titleInput.focus()
      titleInput.select()
    })
  }
  cleanups.push(handle.on('role', applyRole), handle.on('status', s => { if (s === 'syncing' || s === 'synced') applyRole() }))

  // document-scoped refusals, said once in words a person understands
  let toldForbidden = false
  cleanups.push(handle.on('error', e => {
    if (e.code === 'CONCORD_ERR_AUTH_FORBIDDEN') {
      if (!toldForbidden) toast('You can only read this document: your change was not saved.', 'error')
      toldForbidden = true
    } else if (e.closed) {
      toast(`This document is unavailable: ${e.message}`, 'error')
    } else {
      console.warn('[concord]', e.code, e.message)
    }
  }))

  return {
    element,
    body,
    typing: presence.typing,
    readOnly,
    onRoleChange(listener) {
      roleListeners.push(listener)
    },
    destroy() {
      for (const c of cleanups) c()
      presence.destroy()
      status.destroy()
      history.destroy()
    },
  }
}
