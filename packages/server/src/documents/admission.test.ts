import { describe, it, expect } from 'vitest'
import * as Y from 'yjs'
import { ConcordError } from '@concord/protocol'
import { Admission } from './admission.js'
import { ClientOwners } from './client-owners.js'
import { createMemoryStorage } from '../storage/memory-storage.js'
import { silentLogger } from '../ops/logger.js'

function setup(opts: { maxDocumentBytes?: number } = {}): { doc: Y.Doc; owners: ClientOwners; admission: Admission } {
  const doc = new Y.Doc()
  const owners = new ClientOwners('d', createMemoryStorage(), silentLogger())
  const admission = new Admission({ name: 'd', ydoc: doc, get approxBytes() { return Y.encodeStateAsUpdate(doc).length } }, owners, opts)
  return { doc, owners, admission }
}

function updatesOf(fn: (d: Y.Doc) => void, doc = new Y.Doc()): Uint8Array[] {
  const out: Uint8Array[] = []
  doc.on('update', (u: Uint8Array) => { out.push(u) })
  fn(doc)
  return out
}

function codeOf(result: unknown): string | null {
  return result instanceof ConcordError ? result.code : null
}

describe('Admission', () => {
  it('admits an update under a new client id and records the claim before Yjs sees it', () => {
    const { owners, admission } = setup()
    const author = new Y.Doc()
    const [u] = updatesOf(d => d.getText('t').insert(0, 'hi'), author)
    expect(codeOf(admission.admit('alice', u!))).toBeNull()
    expect(owners.of(author.clientID)).toBe('alice')
  })

  it('refuses a client id owned by another user, and one written by an unknown user to an identified one', () => {
    const { doc, owners, admission } = setup()
    const author = new Y.Doc()
    const [u1, u2] = updatesOf(d => { d.getText('t').insert(0, 'a'); d.getText('t').insert(1, 'b') }, author)
    owners.claim(author.clientID, 'alice')
    Y.applyUpdate(doc, u1!)
    expect(codeOf(admission.admit('mallory', u2!))).toBe('CONCORD_ERR_UPDATE_FOREIGN_CLIENT')
    const anonymous = new Y.Doc()
    const [a1, a2] = updatesOf(d => { d.getText('t').insert(0, 'c'); d.getText('t').insert(1, 'd') }, anonymous)
    Y.applyUpdate(doc, a1!)
    expect(codeOf(admission.admit('mallory', a2!))).toBe('CONCORD_ERR_UPDATE_FOREIGN_CLIENT')
    expect(owners.of(anonymous.clientID)).toBeUndefined()
  })

  it('refuses what depends on changes the document does not have, and deletes beyond its state', () => {
    const { doc, admission } = setup()
    const author = new Y.Doc()
    const [u1, u2, u3] = updatesOf(d => { d.getText('t').insert(0, 'ab'); d.getText('t').insert(2, 'c'); d.getText('t').delete(0, 1) }, author)
    expect(codeOf(admission.admit('alice', u2!))).toBe('CONCORD_ERR_UPDATE_OUT_OF_ORDER')
    expect(codeOf(admission.admit('alice', u3!))).toBe('CONCORD_ERR_UPDATE_OUT_OF_ORDER')
    Y.applyUpdate(doc, u1!)
    Y.applyUpdate(doc, u2!)
    expect(codeOf(admission.admit('alice', u3!))).toBeNull()
  })

  it('refuses malformed bytes and updates beyond the document size limit', () => {
    const { admission } = setup({ maxDocumentBytes: 64 })
    expect(codeOf(admission.admit('alice', new Uint8Array([1, 2, 3, 250, 250])))).toBe('CONCORD_ERR_UPDATE_MALFORMED')
    const [big] = updatesOf(d => d.getText('t').insert(0, 'x'.repeat(100)))
    expect(codeOf(admission.admit('alice', big!))).toBe('CONCORD_ERR_LIMIT_DOCUMENT_SIZE')
  })
})
