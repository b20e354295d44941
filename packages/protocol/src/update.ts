import * as Y from 'yjs'

/**
 * Check that `update` is a well-formed Yjs (v1) update without applying it.
 * Returns an error message, or `null` when the update decodes completely.
 * Decoding fully before applying means a truncated delete set can never be
 * half-applied to a server document.
 */
export function validateUpdate(update: Uint8Array): string | null {
  try {
    Y.decodeUpdate(update)
    return null
  } catch (err) {
    return err instanceof Error ? err.message : String(err)
  }
}
