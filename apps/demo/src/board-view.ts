import * as Y from 'yjs'
import { BoardModel, type Card, type Column } from './board-model.js'
import { append, h, icon, ICONS, newId, replaceChildren, toast } from './dom.js'
import { createDocFrame, type AppContext } from './doc-frame.js'
import { documentName, SAMPLES } from './doc-index.js'
import { avatar, peopleIn, type PresenceState } from './presence-bar.js'
import { colorFor } from './session.js'

interface ColumnView {
  root: HTMLElement
  titleInput: HTMLInputElement
  titleText: HTMLElement
  count: HTMLElement
  list: HTMLOListElement
  input: HTMLInputElement
  form: HTMLFormElement
  remove: HTMLButtonElement
}

interface Drag {
  id: string
  pointerId: number
  startX: number
  startY: number
  offsetX: number
  offsetY: number
  source: HTMLElement
  started: boolean
  ghost: HTMLElement | null
  placeholder: HTMLElement | null
  column: string | null
  index: number
}

/**
 * The task board: columns of cards on a BoardModel. Cards move by dragging (mouse: the whole
 * card; touch: its grip), with Alt + arrow keys on a focused card, with the arrows on a card, or
 * from the card's dialog. Everyone sees who is moving or editing which card.
 */
export function mountBoardView(container: HTMLElement, ctx: AppContext, id: string): { destroy(): void } {
  const handle = ctx.client.open(documentName('board', id))
  const model = new BoardModel(handle.doc)
  const frame = createDocFrame(ctx, handle, 'board', id, renderPreview)
  const undo = handle.createUndoManager([model.columnsMap, model.cardsMap])
  const cleanups: (() => void)[] = []
  let destroyed = false
  let drag: Drag | null = null
  let renderDeferred = false
  let suppressClick = false
  let dialog: { cardId: string; close(): void; refresh(): void } | null = null
  const readOnly = (): boolean => frame.readOnly()

  const hintId = `board-hint-${id}`
  const undoButton = h('button', { type: 'button', class: 'tool', 'aria-label': 'Undo', title: 'Undo (Ctrl+Z)', onclick: () => undo.undo() }, icon(ICONS.undo))
  const redoButton = h('button', { type: 'button', class: 'tool', 'aria-label': 'Redo', title: 'Redo (Ctrl+Shift+Z)', onclick: () => undo.redo() }, icon(ICONS.redo))
  const addColumnButton = h('button', { type: 'button', class: 'button ghost', onclick: addColumn }, icon(ICONS.plus), 'Add column')
  const toolbar = h('div', { class: 'board-toolbar', role: 'toolbar', 'aria-label': 'Board' },
    undoButton, redoButton, h('span', { class: 'toolbar-separator', role: 'separator', 'aria-orientation': 'vertical' }), addColumnButton,
    h('p', { class: 'board-hint', id: hintId }, 'Drag cards between columns, or focus a card and press Alt + arrow keys.'))
  const boardEl = h('div', { class: 'board', 'data-testid': 'board', 'aria-describedby': hintId })
  const empty = h('p', { class: 'board-empty muted' }, 'Loading the board…')
  const announcer = h('div', { class: 'visually-hidden', 'aria-live': 'polite' })
  frame.body.append(toolbar, empty, boardEl, announcer)
  container.appendChild(frame.element)

  const updateUndo = (): void => {
    undoButton.disabled = undo.undoStack.length === 0
    redoButton.disabled = undo.redoStack.length === 0
  }
  for (const e of ['stack-item-added', 'stack-item-popped', 'stack-cleared'] as const) undo.on(e, updateUndo)
  updateUndo()

  const columnViews = new Map<string, ColumnView>()

  function createColumn(columnId: string): ColumnView {
    const titleInput = h('input', { class: 'column-title-input', type: 'text', maxlength: 60, 'aria-label': 'Column name' })
    const titleText = h('h2', { class: 'column-title' })
    const count = h('span', { class: 'column-count' })
    const remove = h('button', { type: 'button', class: 'icon-button small', onclick: () => {
      if (!model.deleteColumn(columnId)) toast('Only an empty column can be deleted (and a board keeps at least one).', 'error')
    } }, icon(ICONS.trash))
    const list = h('ol', { class: 'card-list', 'data-column-id': columnId })
    const input = h('input', { class: 'add-card-input', type: 'text', maxlength: 200, placeholder: 'Add a card…' })
    const form = h('form', { class: 'add-card' }, input,
      h('button', { type: 'submit', class: 'icon-button small', 'aria-label': 'Add card' }, icon(ICONS.plus)))
    form.addEventListener('submit', e => {
      e.preventDefault()
      const title = input.value.trim()
      if (title === '') return
      model.addCard(newId(), columnId, { title }, ctx.user.name)
      input.value = ''
      announce(`Added “${title}”.`)
    })
    titleInput.addEventListener('change', () => {
      const title = titleInput.value.trim()
      if (title !== '') model.renameColumn(columnId, title)
      else titleInput.value = model.columns().find(c => c.id === columnId)?.title ?? ''
    })
    titleInput.addEventListener('keydown', e => {
      if (e.key === 'Enter') titleInput.blur()
    })
    const root = h('section', { class: 'column', 'data-column-id': columnId },
      h('header', { class: 'column-header' }, titleInput, titleText, count, remove),
      list, form)
    const view = { root, titleInput, titleText, count, list, input, form, remove }
    columnViews.set(columnId, view)
    return view
  }

  function render(): void {
    if (destroyed) return
    if (drag?.started === true) {
      renderDeferred = true
      return
    }
    renderDeferred = false
    const active = document.activeElement as HTMLElement | null
    const focusCard = active?.closest<HTMLElement>('.card')?.dataset.cardId
    const focusPart = active?.dataset.part
    const ro = readOnly()
    const layout = model.layout()
    empty.hidden = layout.length > 0
    empty.textContent = handle.synced ? 'This board has no columns yet.' : 'Loading the board…'
    const seen = new Set<string>()
    layout.forEach(({ column, cards }, i) => {
      seen.add(column.id)
      const view = columnViews.get(column.id) ?? createColumn(column.id)
      if (document.activeElement !== view.titleInput) view.titleInput.value = column.title
      view.titleText.textContent = column.title
      view.titleInput.hidden = ro
      view.titleText.hidden = !ro
      view.count.textContent = String(cards.length)
      view.count.setAttribute('aria-label', `${cards.length} card${cards.length === 1 ? '' : 's'}`)
      view.root.setAttribute('aria-label', `${column.title}, ${cards.length} card${cards.length === 1 ? '' : 's'}`)
      view.remove.hidden = ro || cards.length > 0 || layout.length <= 1
      view.remove.setAttribute('aria-label', `Delete column ${column.title}`)
      view.form.hidden = ro
      view.input.setAttribute('aria-label', `New card in ${column.title}`)
      replaceChildren(view.list, cards.map((card, j) => renderCard(card, layout.map(l => l.column), i, j, cards.length)))
      if (boardEl.children[i] !== view.root) boardEl.insertBefore(view.root, boardEl.children[i] ?? null)
    })
    for (const [columnId, view] of columnViews) {
      if (seen.has(columnId)) continue
      view.root.remove()
      columnViews.delete(columnId)
    }
    toolbar.hidden = ro
    if (focusCard !== undefined && !boardEl.contains(document.activeElement)) {
      const card = boardEl.querySelector<HTMLElement>(`.card[data-card-id="${CSS.escape(focusCard)}"]`)
      ;(card?.querySelector<HTMLElement>(`[data-part="${focusPart ?? 'open'}"]`) ?? card?.querySelector<HTMLElement>('[data-part="open"]'))?.focus()
    }
    markPeers()
    dialog?.refresh()
  }

  function renderCard(card: Card, columns: Column[], columnIndex: number, index: number, total: number): HTMLElement {
    const ro = readOnly()
    const left = columns[columnIndex - 1]
    const right = columns[columnIndex + 1]
    const due = dueInfo(card.due, columnIndex === columns.length - 1)
    const el = h('li', { class: 'card', 'data-card-id': card.id, 'data-title': card.title },
      ro ? null : h('span', { class: 'card-grip', title: 'Drag to move', 'aria-hidden': 'true' }, icon(ICONS.grip)),
      h('button', {
        type: 'button', class: 'card-open', 'data-part': 'open', 'aria-describedby': hintId,
        'aria-label': `${card.title}${card.assignee ? `, assigned to ${card.assignee}` : ''}${due ? `, due ${due.long}` : ''}. ${columns[columnIndex]!.title}, ${index + 1} of ${total}.`,
        onclick: () => { if (!suppressClick) openCardDialog(card.id) },
        onkeydown: (e: KeyboardEvent) => onCardKey(e, card.id),
      }, card.title || 'Untitled card'),
      (card.assignee || due) ? h('div', { class: 'card-meta' },
        due ? h('span', { class: `due ${due.state}`, title: `Due ${due.long}` }, icon(ICONS.calendar), due.short) : null,
        card.assignee ? h('span', { class: 'assignee', title: `Assigned to ${card.assignee}` }, avatar(card.assignee, colorFor(card.assignee), { size: 'sm' }), h('span', { class: 'assignee-name' }, card.assignee)) : null) : null,
      ro ? null : h('div', { class: 'card-move' },
        h('button', { type: 'button', class: 'icon-button tiny', tabindex: -1, 'data-part': 'left', disabled: left === undefined, 'aria-label': left ? `Move to ${left.title}` : 'Move left', title: left ? `Move to ${left.title}` : '', onclick: () => moveBy(card.id, -1, 0) }, icon(ICONS.left)),
        h('button', { type: 'button', class: 'icon-button tiny', tabindex: -1, 'data-part': 'right', disabled: right === undefined, 'aria-label': right ? `Move to ${right.title}` : 'Move right', title: right ? `Move to ${right.title}` : '', onclick: () => moveBy(card.id, 1, 0) }, icon(ICONS.right))),
      h('span', { class: 'card-peer', 'aria-hidden': 'true' }))
    return el
  }

  /** Who else is dragging or editing which card: a coloured ring and their initials. */
  function markPeers(): void {
    const byCard = new Map<string, { name: string; color: string }>()
    for (const [clientId, raw] of handle.awareness.getStates()) {
      const state = raw as PresenceState
      if (clientId === handle.awareness.clientID || typeof state.card !== 'string' || state.user?.name === undefined) continue
      byCard.set(state.card, { name: state.user.name, color: state.user.color ?? '#57534e' })
    }
    for (const el of boardEl.querySelectorAll<HTMLElement>('.card')) {
      const peer = byCard.get(el.dataset.cardId ?? '')
      el.classList.toggle('peer-active', peer !== undefined)
      const badge = el.querySelector<HTMLElement>('.card-peer')!
      if (peer === undefined) {
        if (badge.childElementCount > 0) badge.replaceChildren()
        el.style.removeProperty('--peer')
        continue
      }
      el.style.setProperty('--peer', peer.color)
      badge.replaceChildren(avatar(peer.name, peer.color, { size: 'sm', title: `${peer.name} is on this card` }))
    }
  }

  function announce(message: string): void {
    announcer.textContent = message
  }

  function setActiveCard(cardId: string | null): void {
    handle.awareness.setLocalStateField('card', cardId)
  }

  function moveBy(cardId: string, columns: number, positions: number): void {
    const layout = model.layout()
    const ci = layout.findIndex(l => l.cards.some(c => c.id === cardId))
    if (ci < 0) return
    const from = layout[ci]!
    const at = from.cards.findIndex(c => c.id === cardId)
    const card = from.cards[at]!
    if (columns !== 0) {
      const target = layout[ci + columns]
      if (target === undefined) return
      model.moveCard(cardId, target.column.id, Math.min(at, target.cards.length))
      announce(`Moved “${card.title}” to ${target.column.title}.`)
    } else {
      const to = at + positions
      if (to < 0 || to >= from.cards.length) return
      model.moveCard(cardId, from.column.id, to)
      announce(`Moved “${card.title}” to position ${to + 1} of ${from.cards.length} in ${from.column.title}.`)
    }
  }

  function onCardKey(e: KeyboardEvent, cardId: string): void {
    if (!e.altKey || readOnly()) return
    const moves: Record<string, [number, number]> = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] }
    const move = moves[e.key]
    if (move === undefined) return
    e.preventDefault()
    moveBy(cardId, move[0], move[1])
  }

  // drag and drop with pointer events (mouse, pen, touch on the grip); Escape cancels
  boardEl.addEventListener('pointerdown', e => {
    if (readOnly() || e.button !== 0 || drag !== null) return
    const target = e.target as HTMLElement
    const source = target.closest<HTMLElement>('.card')
    if (source === null || target.closest('.card-move') !== null) return
    if (e.pointerType !== 'mouse' && target.closest('.card-grip') === null) return
    const rect = source.getBoundingClientRect()
    drag = {
      id: source.dataset.cardId!, pointerId: e.pointerId, startX: e.clientX, startY: e.clientY,
      offsetX: e.clientX - rect.left, offsetY: e.clientY - rect.top, source, started: false,
      ghost: null, placeholder: null, column: null, index: 0,
    }
    if (e.pointerType !== 'mouse') e.preventDefault()
    window.addEventListener('pointermove', onPointerMove)
    window.addEventListener('pointerup', onPointerUp)
    window.addEventListener('pointercancel', cancelDrag)
    window.addEventListener('keydown', onDragKey, true)
  })

  function onPointerMove(e: PointerEvent): void {
    if (drag === null || e.pointerId !== drag.pointerId) return
    if (!drag.started) {
      if (Math.hypot(e.clientX - drag.startX, e.clientY - drag.startY) < 5) return
      startDrag(drag)
    }
    e.preventDefault()
    drag.ghost!.style.transform = `translate(${e.clientX - drag.offsetX}px, ${e.clientY - drag.offsetY}px) rotate(2deg)`
    // scroll the board when dragging near its edges
    const box = boardEl.getBoundingClientRect()
    if (e.clientX < box.left + 40) boardEl.scrollLeft -= 16
    else if (e.clientX > box.right - 40) boardEl.scrollLeft += 16
    const under = document.elementFromPoint(e.clientX, e.clientY)?.closest<HTMLElement>('.column')
    if (under === null || under === undefined) return
    const list = under.querySelector<HTMLOListElement>('.card-list')!
    const cards = [...list.querySelectorAll<HTMLElement>('.card')].filter(c => c !== drag!.source)
    let index = cards.findIndex(c => {
      const r = c.getBoundingClientRect()
      return e.clientY < r.top + r.height / 2
    })
    if (index < 0) index = cards.length
    drag.column = under.dataset.columnId!
    drag.index = index
    const before = cards[index] ?? null
    if (drag.placeholder!.parentElement !== list || drag.placeholder!.nextElementSibling !== before) list.insertBefore(drag.placeholder!, before)
  }

  function startDrag(d: Drag): void {
    d.started = true
    const rect = d.source.getBoundingClientRect()
    const ghost = d.source.cloneNode(true) as HTMLElement
    ghost.classList.add('card-ghost')
    ghost.removeAttribute('data-card-id')
    ghost.setAttribute('aria-hidden', 'true')
    ghost.style.width = `${rect.width}px`
    document.body.appendChild(ghost)
    d.ghost = ghost
    d.placeholder = h('li', { class: 'card-placeholder', style: { height: `${rect.height}px` }, 'aria-hidden': 'true' })
    d.source.after(d.placeholder)
    d.source.classList.add('drag-source')
    d.column = d.source.closest<HTMLElement>('.card-list')?.dataset.columnId ?? null
    document.body.classList.add('dragging')
    setActiveCard(d.id)
  }

  function endDrag(): Drag | null {
    const d = drag
    drag = null
    window.removeEventListener('pointermove', onPointerMove)
    window.removeEventListener('pointerup', onPointerUp)
    window.removeEventListener('pointercancel', cancelDrag)
    window.removeEventListener('keydown', onDragKey, true)
    if (d?.started === true) {
      d.ghost?.remove()
      d.placeholder?.remove()
      d.source.classList.remove('drag-source')
      document.body.classList.remove('dragging')
      setActiveCard(null)
      // the click that ends a drag does not open the card
      suppressClick = true
      setTimeout(() => { suppressClick = false }, 0)
    }
    return d
  }

  function onPointerUp(e: PointerEvent): void {
    if (drag === null || e.pointerId !== drag.pointerId) return
    const d = endDrag()
    if (d === null || !d.started || d.column === null) {
      if (renderDeferred) render()
      return
    }
    const title = model.card(d.id)?.title ?? 'card'
    const moved = model.moveCard(d.id, d.column, d.index)
    if (moved) announce(`Moved “${title}” to ${model.columns().find(c => c.id === d.column)?.title ?? 'another column'}.`)
    if (!moved || renderDeferred) render()
  }

  function cancelDrag(): void {
    endDrag()
    render()
  }

  function onDragKey(e: KeyboardEvent): void {
    if (e.key !== 'Escape' || drag === null) return
    e.preventDefault()
    e.stopPropagation()
    cancelDrag()
    announce('Move cancelled.')
  }

  function addColumn(): void {
    const columnId = newId()
    model.addColumn(columnId, 'New column')
    const view = columnViews.get(columnId)
    view?.titleInput.focus()
    view?.titleInput.select()
    view?.root.scrollIntoView({ inline: 'nearest', block: 'nearest' })
  }

  function openCardDialog(cardId: string): void {
    const card = model.card(cardId)
    if (card === null) return
    const ro = readOnly()
    const el = h('dialog', { class: 'dialog card-dialog', 'aria-labelledby': `card-dialog-title-${cardId}` })
    const title = h('input', { id: `card-title-${cardId}`, class: 'input', type: 'text', required: true, maxlength: 200, value: card.title, disabled: ro })
    const known = new Set<string>([ctx.user.name, ...peopleIn(handle).map(p => p.name), ...model.cards().map(c => c.assignee).filter(Boolean)])
    const assignee = h('input', { id: `card-assignee-${cardId}`, class: 'input', type: 'text', maxlength: 60, list: `people-${cardId}`, value: card.assignee, disabled: ro, placeholder: 'Nobody' })
    const people = h('datalist', { id: `people-${cardId}` }, [...known].sort().map(n => h('option', { value: n })))
    const due = h('input', { id: `card-due-${cardId}`, class: 'input', type: 'date', value: card.due, disabled: ro })
    const column = h('select', { id: `card-column-${cardId}`, class: 'input', disabled: ro },
      model.columns().map(c => h('option', { value: c.id, selected: c.id === model.columnOf(cardId) }, c.title)))
    const form = h('form', { method: 'dialog', class: 'card-form' },
      h('h2', { id: `card-dialog-title-${cardId}` }, ro ? 'Card' : 'Edit card'),
      h('label', { for: title.id }, 'Title'), title,
      h('div', { class: 'form-row' },
        h('div', null, h('label', { for: assignee.id }, 'Assignee'), assignee, people),
        h('div', null, h('label', { for: due.id }, 'Due date'), due)),
      h('label', { for: column.id }, 'Column'), column,
      h('div', { class: 'dialog-actions' },
        ro ? null : h('button', { type: 'button', class: 'button danger push-left', onclick: () => {
          const t = model.card(cardId)?.title ?? ''
          model.deleteCard(cardId)
          close()
          announce(`Deleted “${t}”.`)
          toast(`Deleted “${t}”. Undo with Ctrl+Z.`)
        } }, icon(ICONS.trash), 'Delete'),
        h('button', { type: 'button', class: 'button', onclick: () => close() }, ro ? 'Close' : 'Cancel'),
        ro ? null : h('button', { type: 'submit', class: 'button primary' }, 'Save')))
    form.addEventListener('submit', e => {
      e.preventDefault()
      const t = title.value.trim()
      if (t === '') {
        title.focus()
        return
      }
      handle.doc.transact(() => {
        model.updateCard(cardId, { title: t, assignee: assignee.value.trim(), due: due.value })
        if (column.value !== model.columnOf(cardId)) model.moveCard(cardId, column.value, Number.MAX_SAFE_INTEGER)
      })
      close()
    })
    append(el, [form])
    const close = (): void => {
      if (dialog?.cardId !== cardId) return
      dialog = null
      setActiveCard(null)
      el.close()
      el.remove()
      boardEl.querySelector<HTMLElement>(`.card[data-card-id="${CSS.escape(cardId)}"] .card-open`)?.focus()
    }
    el.addEventListener('cancel', e => {
      e.preventDefault()
      close()
    })
    dialog = {
      cardId,
      close,
      refresh() {
        if (model.card(cardId) === null) {
          close()
          toast('This card was deleted by someone else.')
        }
      },
    }
    document.body.appendChild(el)
    el.showModal()
    setActiveCard(cardId)
    if (!ro) title.focus()
  }

  // board-wide undo (this person's own changes), except while typing in a field
  frame.element.addEventListener('keydown', e => {
    if (!(e.ctrlKey || e.metaKey) || e.key.toLowerCase() !== 'z' || readOnly()) return
    if ((e.target as HTMLElement).closest('input, textarea, select') !== null) return
    e.preventDefault()
    if (e.shiftKey) undo.redo()
    else undo.undo()
  })

  cleanups.push(model.onChange(() => render()))
  handle.awareness.on('change', markPeers)
  cleanups.push(() => handle.awareness.off('change', markPeers))
  cleanups.push(handle.on('synced', () => render()))
  frame.onRoleChange(() => render())
  render()

  void handle.whenSynced().then(() => {
    if (destroyed || readOnly()) return
    model.seedColumns()
    if (id === SAMPLES.roadmap.id) model.seedSamples()
  })

  return {
    destroy() {
      destroyed = true
      if (drag !== null) endDrag()
      dialog?.close()
      for (const c of cleanups) c()
      frame.destroy()
      handle.close()
    },
  }
}

/** How a due date reads, and whether it is late (cards in the last column are done, never late). */
function dueInfo(due: string, done: boolean): { short: string; long: string; state: 'overdue' | 'soon' | 'later' | 'done' } | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(due)
  if (m === null) return null
  const date = new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]))
  const today = new Date()
  today.setHours(0, 0, 0, 0)
  const days = Math.round((date.getTime() - today.getTime()) / 86_400_000)
  const short = days === 0 ? 'Today' : days === 1 ? 'Tomorrow' : date.toLocaleDateString(undefined, { day: 'numeric', month: 'short' })
  const long = date.toLocaleDateString(undefined, { weekday: 'long', day: 'numeric', month: 'long', year: 'numeric' })
  return { short, long, state: done ? 'done' : days < 0 ? 'overdue' : days <= 2 ? 'soon' : 'later' }
}

/** A version of a board, rendered read-only by the same model as the live board. */
function renderPreview(update: Uint8Array): Node {
  const doc = new Y.Doc()
  Y.applyUpdate(doc, update)
  const layout = new BoardModel(doc).layout()
  doc.destroy()
  if (layout.length === 0) return h('p', { class: 'muted' }, 'This version is empty.')
  return h('div', { class: 'board-preview' }, layout.map(({ column, cards }) =>
    h('section', { class: 'preview-column' },
      h('h4', null, `${column.title} `, h('span', { class: 'column-count' }, String(cards.length))),
      cards.length === 0 ? h('p', { class: 'muted small' }, 'No cards') : h('ul', null, cards.map(c => h('li', null, c.title))))))
}
