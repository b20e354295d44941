import * as Y from 'yjs'
import { applySeed, SEED_CLIENTS } from './seed.js'

export interface Column {
  id: string
  title: string
  order: number
}

export interface Card {
  id: string
  title: string
  /** A person's name, or '' for nobody. */
  assignee: string
  /** `yyyy-mm-dd`, or '' for none. */
  due: string
  column: string
  order: number
  createdAt: number
  createdBy: string
}

export type CardFields = Partial<Pick<Card, 'title' | 'assignee' | 'due'>>

/**
 * A task board on Yjs.
 *
 * - `columns`: Y.Map id → Y.Map {title, order}.
 * - `cards`: Y.Map id → Y.Map {title, assignee, due, column, order, createdAt, createdBy}.
 *
 * A card exists once, as one entry of `cards`, whatever happens to it; its place is two keys of
 * its own map. Moving it sets `column` and `order` (a fraction between its new neighbours), so
 * two people moving the same card at once each set those keys, Yjs keeps one value per key (the
 * same on every replica), and the card ends in one column, once: never lost, never duplicated.
 * A card whose column was deleted meanwhile shows in the first column.
 */
export class BoardModel {
  readonly doc: Y.Doc
  readonly columnsMap: Y.Map<Y.Map<unknown>>
  readonly cardsMap: Y.Map<Y.Map<unknown>>

  constructor(doc: Y.Doc) {
    this.doc = doc
    this.columnsMap = doc.getMap('columns')
    this.cardsMap = doc.getMap('cards')
  }

  columns(): Column[] {
    const out: Column[] = []
    for (const [id, col] of this.columnsMap) {
      if (!(col instanceof Y.Map)) continue
      out.push({ id, title: String(col.get('title') ?? ''), order: Number(col.get('order') ?? 0) })
    }
    return out.sort((a, b) => a.order - b.order || compare(a.id, b.id))
  }

  cards(): Card[] {
    const out: Card[] = []
    for (const [id, card] of this.cardsMap) {
      if (!(card instanceof Y.Map)) continue
      out.push({
        id,
        title: String(card.get('title') ?? ''),
        assignee: String(card.get('assignee') ?? ''),
        due: String(card.get('due') ?? ''),
        column: String(card.get('column') ?? ''),
        order: Number(card.get('order') ?? 0),
        createdAt: Number(card.get('createdAt') ?? 0),
        createdBy: String(card.get('createdBy') ?? ''),
      })
    }
    return out
  }

  card(id: string): Card | null {
    return this.cards().find(c => c.id === id) ?? null
  }

  /** Every column with its cards in order; cards of a column that no longer exists go to the first. */
  layout(): { column: Column; cards: Card[] }[] {
    const columns = this.columns()
    const byId = new Map(columns.map(c => [c.id, [] as Card[]]))
    const fallback = columns[0]?.id
    for (const card of this.cards()) {
      const list = byId.get(card.column) ?? (fallback !== undefined ? byId.get(fallback) : undefined)
      list?.push(card)
    }
    return columns.map(column => ({ column, cards: byId.get(column.id)!.sort(byOrder) }))
  }

  cardsIn(columnId: string): Card[] {
    return this.layout().find(l => l.column.id === columnId)?.cards ?? []
  }

  /** The column a card is shown in (its own, or the first when its own was deleted). */
  columnOf(cardId: string): string | null {
    for (const { column, cards } of this.layout()) if (cards.some(c => c.id === cardId)) return column.id
    return null
  }

  addCard(id: string, columnId: string, fields: CardFields & { title: string }, createdBy: string): void {
    const last = this.cardsIn(columnId).at(-1)
    const card = new Y.Map<unknown>()
    this.doc.transact(() => {
      this.cardsMap.set(id, card)
      card.set('title', fields.title)
      card.set('assignee', fields.assignee ?? '')
      card.set('due', fields.due ?? '')
      card.set('column', columnId)
      card.set('order', last === undefined ? 1 : last.order + 1)
      card.set('createdAt', Date.now())
      card.set('createdBy', createdBy)
    })
  }

  updateCard(id: string, fields: CardFields): void {
    const card = this.cardsMap.get(id)
    if (!(card instanceof Y.Map)) return
    this.doc.transact(() => {
      for (const [key, value] of Object.entries(fields)) {
        if (value !== undefined && card.get(key) !== value) card.set(key, value)
      }
    })
  }

  deleteCard(id: string): void {
    this.cardsMap.delete(id)
  }

  /**
   * Put a card at `index` among the other cards of `columnId` (0 = top). Sets the card's
   * `column` and `order` in one transaction; nothing else is written unless the neighbours'
   * orders are too close to split, when that column's cards are renumbered first.
   */
  moveCard(id: string, columnId: string, index: number): boolean {
    const card = this.cardsMap.get(id)
    if (!(card instanceof Y.Map) || !this.columnsMap.has(columnId)) return false
    let others = this.cardsIn(columnId).filter(c => c.id !== id)
    const at = Math.max(0, Math.min(index, others.length))
    const current = this.cardsIn(columnId).findIndex(c => c.id === id)
    if (current === at && this.columnOf(id) === columnId && card.get('column') === columnId) return false
    this.doc.transact(() => {
      let before = others[at - 1]
      let after = others[at]
      if (before !== undefined && after !== undefined && after.order - before.order < 1e-9) {
        others.forEach((c, i) => (this.cardsMap.get(c.id) as Y.Map<unknown>).set('order', i + 1))
        others = others.map((c, i) => ({ ...c, order: i + 1 }))
        before = others[at - 1]
        after = others[at]
      }
      const order = before !== undefined && after !== undefined ? (before.order + after.order) / 2
        : before !== undefined ? before.order + 1
          : after !== undefined ? after.order - 1
            : 1
      card.set('column', columnId)
      card.set('order', order)
    })
    return true
  }

  addColumn(id: string, title: string): void {
    const last = this.columns().at(-1)
    const col = new Y.Map<unknown>()
    this.doc.transact(() => {
      this.columnsMap.set(id, col)
      col.set('title', title)
      col.set('order', last === undefined ? 1 : last.order + 1)
    })
  }

  renameColumn(id: string, title: string): void {
    const col = this.columnsMap.get(id)
    if (col instanceof Y.Map && col.get('title') !== title) col.set('title', title)
  }

  /** Deletes an empty column (its cards would have nowhere to go); false if it has cards or is the last one. */
  deleteColumn(id: string): boolean {
    if (this.cardsIn(id).length > 0 || this.columnsMap.size <= 1) return false
    this.columnsMap.delete(id)
    return true
  }

  /** Calls `listener` after every change, local or remote; returns the unsubscribe function. */
  onChange(listener: (local: boolean) => void): () => void {
    const cards = (_e: unknown, tr: Y.Transaction): void => listener(tr.local)
    const cols = (_e: unknown, tr: Y.Transaction): void => listener(tr.local)
    this.cardsMap.observeDeep(cards)
    this.columnsMap.observeDeep(cols)
    return () => {
      this.cardsMap.unobserveDeep(cards)
      this.columnsMap.unobserveDeep(cols)
    }
  }

  /** The three columns every board starts with (once per board, see `applySeed`). */
  seedColumns(): void {
    applySeed(this.doc, SEED_CLIENTS.base, doc => {
      const columns = doc.getMap<Y.Map<unknown>>('columns')
      DEFAULT_COLUMNS.forEach(([id, title], i) => {
        const col = new Y.Map<unknown>()
        columns.set(id, col)
        col.set('title', title)
        col.set('order', i + 1)
      })
    })
  }

  /** Sample cards for the launch board of a new server. */
  seedSamples(): void {
    applySeed(this.doc, SEED_CLIENTS.samples, doc => {
      const cards = doc.getMap<Y.Map<unknown>>('cards')
      SAMPLE_CARDS.forEach(([id, title, column, assignee, due], i) => {
        const card = new Y.Map<unknown>()
        cards.set(id, card)
        card.set('title', title)
        card.set('assignee', assignee)
        card.set('due', due)
        card.set('column', column)
        card.set('order', i + 1)
        card.set('createdAt', 0)
        card.set('createdBy', 'Concord')
      })
    })
  }
}

const DEFAULT_COLUMNS = [['todo', 'To do'], ['doing', 'In progress'], ['done', 'Done']] as const

const SAMPLE_CARDS = [
  ['s-invite', 'Invite a teammate: open this page in a second window', 'todo', '', ''],
  ['s-offline', 'Go offline, keep editing, come back', 'todo', '', ''],
  ['s-history', 'Name a version of the welcome document', 'todo', '', ''],
  ['s-drag', 'Drag me to “Done”', 'doing', '', ''],
  ['s-server', 'Start the server with npm start', 'done', 'Concord', ''],
] as const

function byOrder(a: Card, b: Card): number {
  return a.order - b.order || compare(a.id, b.id)
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}
