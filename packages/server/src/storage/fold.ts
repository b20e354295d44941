import * as Y from 'yjs'

/** A snapshot and the log updates after it, folded into one Yjs update (the document's whole state). */
export function foldState(snapshot: Uint8Array | null, updates: Iterable<Uint8Array>): Uint8Array {
  const doc = new Y.Doc({ gc: true })
  try {
    doc.transact(() => {
      if (snapshot !== null) Y.applyUpdate(doc, snapshot)
      for (const u of updates) Y.applyUpdate(doc, u)
    })
    return Y.encodeStateAsUpdate(doc)
  } finally {
    doc.destroy()
  }
}
