import type { DocHandle, VersionInfo } from '@concord/client'
import { confirmDialog, formatDateTime, h, icon, ICONS, replaceChildren, timeAgo, toast } from './dom.js'
import type { DocKind } from './doc-index.js'
import type { TokenSource } from './session.js'

interface HistoryOptions {
  handle: DocHandle
  kind: DocKind
  /** The panel element's id (the History button controls it). */
  id: string
  readOnly(): boolean
  tokens: TokenSource
  /** Renders a version's content (a Yjs update) read-only. */
  renderPreview(update: Uint8Array): Node
  onClose(): void
}

/**
 * Version history (docs/history.md): the versions the server keeps (checkpoints and named
 * versions), a named version saved on demand, a read-only preview of any version, and restore
 * (writers only, after a confirmation) as a new change everyone receives.
 */
export function createHistoryPanel(opts: HistoryOptions): {
  element: HTMLElement; toggle(): void; onToggle(listener: (open: boolean) => void): void; destroy(): void
} {
  const { handle } = opts
  const listeners: ((open: boolean) => void)[] = []
  let open = false
  let selected: VersionInfo | null = null
  let versions: VersionInfo[] = []
  let loadSeq = 0

  const list = h('ol', { class: 'version-list', 'aria-label': 'Versions, newest first' })
  const listStatus = h('p', { class: 'muted small', 'aria-live': 'polite' })
  const nameInput = h('input', { type: 'text', class: 'input', placeholder: 'Version name', 'aria-label': 'Version name', maxlength: 80, required: true })
  const saveForm = h('form', { class: 'version-form' },
    nameInput,
    h('button', { type: 'submit', class: 'button primary' }, icon(ICONS.save), 'Save version'))
  saveForm.addEventListener('submit', e => {
    e.preventDefault()
    const name = nameInput.value.trim()
    if (name === '') return
    const button = saveForm.querySelector('button')!
    button.disabled = true
    // save what this tab has written first, so the version holds it
    void handle.whenSaved().then(() => handle.createVersion(name)).then(v => {
      nameInput.value = ''
      toast(`Saved version “${v.name ?? name}”.`)
      return load()
    }, (err: Error) => toast(`The version could not be saved: ${err.message}`, 'error')).finally(() => {
      button.disabled = false
    })
  })

  const preview = h('div', { class: 'version-preview', hidden: true })
  const panel = h('aside', { class: 'history-panel', id: opts.id, 'aria-label': 'Version history', hidden: true, tabindex: -1 },
    h('div', { class: 'panel-header' },
      h('h2', null, 'Version history'),
      h('button', { type: 'button', class: 'icon-button', 'aria-label': 'Close version history', onclick: () => setOpen(false) }, icon(ICONS.close))),
    saveForm,
    listStatus,
    list,
    preview)
  panel.addEventListener('keydown', e => {
    if (e.key === 'Escape') {
      e.stopPropagation()
      if (!preview.hidden) closePreview()
      else setOpen(false)
    }
  })

  function setOpen(value: boolean): void {
    if (open === value) return
    open = value
    panel.hidden = !value
    for (const l of listeners) l(value)
    if (value) {
      saveForm.hidden = opts.readOnly()
      void load()
      panel.focus()
    } else {
      closePreview()
      opts.onClose()
    }
  }

  async function load(): Promise<void> {
    const seq = ++loadSeq
    listStatus.textContent = 'Loading versions…'
    try {
      const found = await handle.versions()
      if (seq !== loadSeq) return
      versions = found.slice().reverse()
      renderList()
      listStatus.textContent = versions.length === 0
        ? 'No versions yet. The server saves one when everyone has left and after every 10 minutes of editing; save one by name at any time.'
        : `${versions.length} version${versions.length === 1 ? '' : 's'}`
    } catch (err) {
      if (seq === loadSeq) listStatus.textContent = `Versions could not be loaded: ${(err as Error).message}`
    }
  }

  function renderList(): void {
    replaceChildren(list, versions.map(v => {
      const title = v.kind === 'named' ? v.name ?? 'Named version' : 'Autosave'
      const authors = v.authors.length > 0 ? v.authors.join(', ') : v.createdBy ?? 'no one'
      const item = h('li', { class: `version${selected?.id === v.id ? ' selected' : ''}` },
        h('button', { type: 'button', class: 'version-button', 'aria-current': selected?.id === v.id ? 'true' : null, onclick: () => void showPreview(v) },
          h('span', { class: 'version-name' }, title,
            h('span', { class: `badge badge-${v.kind}` }, v.kind === 'named' ? 'Named' : 'Auto')),
          h('span', { class: 'version-time', title: formatDateTime(v.createdAt) }, timeAgo(v.createdAt)),
          h('span', { class: 'version-authors' }, `By ${authors}`)))
      return item
    }))
  }

  async function showPreview(v: VersionInfo): Promise<void> {
    selected = v
    renderList()
    preview.hidden = false
    const restore = h('button', { type: 'button', class: 'button primary', onclick: () => void restoreVersion(v) }, icon(ICONS.history), 'Restore this version')
    restore.hidden = opts.readOnly()
    const content = h('div', { class: `preview-content kind-${opts.kind}` }, h('p', { class: 'muted' }, 'Loading…'))
    replaceChildren(preview,
      h('div', { class: 'preview-header' },
        h('h3', { tabindex: -1 }, v.kind === 'named' ? `“${v.name}”` : `Autosave, ${timeAgo(v.createdAt)}`),
        h('button', { type: 'button', class: 'icon-button', 'aria-label': 'Close preview', onclick: closePreview }, icon(ICONS.close))),
      h('p', { class: 'muted small' }, `${formatDateTime(v.createdAt)} · read-only preview`),
      content,
      h('div', { class: 'preview-actions' }, restore))
    try {
      const update = await fetchVersion(v.id)
      if (selected?.id !== v.id) return
      replaceChildren(content, opts.renderPreview(update))
    } catch (err) {
      replaceChildren(content, h('p', { class: 'error-text' }, `The version could not be loaded: ${(err as Error).message}`))
    }
    preview.querySelector<HTMLElement>('.preview-header h3')?.focus()
  }

  function closePreview(): void {
    selected = null
    preview.hidden = true
    replaceChildren(preview)
    renderList()
  }

  /** The version's content as a Yjs update (`format=update`), rendered here by the same code as the live view. */
  async function fetchVersion(versionId: string): Promise<Uint8Array> {
    const token = await opts.tokens.get()
    const res = await fetch(`/v1/documents/${encodeURIComponent(handle.name)}/versions/${encodeURIComponent(versionId)}?format=update`, {
      headers: { authorization: `Bearer ${token}` },
    })
    if (!res.ok) {
      const body = await res.json().catch(() => null) as { message?: string } | null
      throw new Error(body?.message ?? `HTTP ${res.status}`)
    }
    return new Uint8Array(await res.arrayBuffer())
  }

  async function restoreVersion(v: VersionInfo): Promise<void> {
    const name = v.kind === 'named' ? `“${v.name}”` : `the autosave of ${formatDateTime(v.createdAt)}`
    const ok = await confirmDialog({
      title: 'Restore this version?',
      message: `The ${opts.kind === 'doc' ? 'document' : 'board'} goes back to ${name} for everyone. Nothing is lost: the current state stays in the history, and you can restore it later.`,
      confirm: 'Restore',
    })
    if (!ok) return
    try {
      await handle.whenSaved()
      const { changed } = await handle.restore(v.id)
      toast(changed ? `Restored ${name}.` : 'Nothing to restore: the content is already the same.')
      closePreview()
      void load()
    } catch (err) {
      toast(`Restore failed: ${(err as Error).message}`, 'error')
    }
  }

  return {
    element: panel,
    toggle: () => setOpen(!open),
    onToggle(listener) {
      listeners.push(listener)
    },
    destroy() {
      loadSeq++
    },
  }
}
