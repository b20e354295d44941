import * as Y from 'yjs'
import type { DocHandle } from '@concord/client'
import { TENANT } from './session.js'
import { applySeed, SEED_CLIENTS } from './seed.js'

export type DocKind = 'doc' | 'board'

export interface DocEntry {
  id: string
  title: string
  kind: DocKind
  /** ms since the epoch; 0 for the samples every new server starts with. */
  createdAt: number
  createdBy: string
}

/** The list of documents is itself a Concord document, so it is live for everyone. */
export const INDEX_DOCUMENT = `${TENANT}/index`

/** The Concord document that holds a list entry's content. */
export function documentName(kind: DocKind, id: string): string {
  return `${TENANT}/${kind}-${id}`
}

export function routeOf(entry: Pick<DocEntry, 'kind' | 'id'>): string {
  return `#/${entry.kind}/${encodeURIComponent(entry.id)}`
}

/** The samples a new server starts with (ids fixed, so concurrent first visits agree). */
export const SAMPLES = {
  welcome: { id: 'welcome', kind: 'doc', title: 'Welcome to Concord' },
  roadmap: { id: 'roadmap', kind: 'board', title: 'Launch board' },
} as const

/**
 * `docs`: a Y.Map of id → Y.Map {title, kind, createdAt, createdBy}. Each entry is its own map,
 * so a rename and a concurrent creation never overwrite each other.
 */
export class DocIndex {
  readonly handle: DocHandle
  readonly #docs: Y.Map<Y.Map<unknown>>

  constructor(handle: DocHandle) {
    this.handle = handle
    this.#docs = handle.doc.getMap('docs')
  }

  entries(): DocEntry[] {
    const out: DocEntry[] = []
    for (const [id, entry] of this.#docs) {
      if (!(entry instanceof Y.Map)) continue
      const kind = entry.get('kind')
      if (kind !== 'doc' && kind !== 'board') continue
      out.push({
        id,
        kind,
        title: String(entry.get('title') ?? '') || 'Untitled',
        createdAt: Number(entry.get('createdAt') ?? 0),
        createdBy: String(entry.get('createdBy') ?? ''),
      })
    }
    // newest first; the samples last
    return out.sort((a, b) => b.createdAt - a.createdAt || a.title.localeCompare(b.title))
  }

  get(id: string): DocEntry | null {
    return this.entries().find(e => e.id === id) ?? null
  }

  create(kind: DocKind, id: string, title: string, createdBy: string): void {
    const entry = new Y.Map<unknown>()
    this.handle.doc.transact(() => {
      this.#docs.set(id, entry)
      entry.set('kind', kind)
      entry.set('title', title)
      entry.set('createdAt', Date.now())
      entry.set('createdBy', createdBy)
    })
  }

  rename(id: string, title: string): void {
    const entry = this.#docs.get(id)
    if (entry instanceof Y.Map && entry.get('title') !== title) entry.set('title', title)
  }

  /** Calls `listener` on every change; returns the unsubscribe function. */
  onChange(listener: () => void): () => void {
    this.#docs.observeDeep(listener)
    return () => this.#docs.unobserveDeep(listener)
  }

  /** The samples, once per server (see `applySeed`). */
  seed(): void {
    applySeed(this.handle.doc, SEED_CLIENTS.base, doc => {
      const docs = doc.getMap<Y.Map<unknown>>('docs')
      for (const sample of [SAMPLES.welcome, SAMPLES.roadmap]) {
        const entry = new Y.Map<unknown>()
        docs.set(sample.id, entry)
        entry.set('kind', sample.kind)
        entry.set('title', sample.title)
        entry.set('createdAt', 0)
        entry.set('createdBy', 'Concord')
      }
    })
  }
}
