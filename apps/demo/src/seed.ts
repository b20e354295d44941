import * as Y from 'yjs'

/** Origin of seed transactions (they are not undoable). */
export const SEED_ORIGIN = 'concord-demo-seed'

/**
 * Puts starting content in a document exactly once, however many people open it at the same
 * moment: the content is built in a scratch document under a fixed Yjs client id, so every
 * browser produces byte-identical items (same client id, same clocks), and Yjs keeps one copy
 * of an item it already has. A document whose state already holds items of that client id was
 * seeded before (even if everything was deleted since) and is left alone.
 *
 * Call it after the document synced with the server, and only with write access.
 */
export function applySeed(target: Y.Doc, seedClientId: number, build: (doc: Y.Doc) => void): boolean {
  if (Y.decodeStateVector(Y.encodeStateVector(target)).has(seedClientId)) return false
  const scratch = new Y.Doc({ gc: false })
  scratch.clientID = seedClientId
  build(scratch)
  Y.applyUpdate(target, Y.encodeStateAsUpdate(scratch), SEED_ORIGIN)
  scratch.destroy()
  return true
}

/** Client ids reserved for seeds (a random Yjs client id is a 32-bit number; these never collide in practice). */
export const SEED_CLIENTS = { base: 1, samples: 2 } as const
