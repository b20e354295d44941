import { ConcordError } from './errors.js'

/** Longest document name accepted, in UTF-8 bytes. */
export const MAX_DOCUMENT_NAME_BYTES = 512

// C0 and C1 control characters, DEL
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/

/** Why `name` is not a valid document name, or `null` when it is. */
export function documentNameProblem(name: string): string | null {
  if (name.length === 0) return 'document name is empty'
  if (new TextEncoder().encode(name).length > MAX_DOCUMENT_NAME_BYTES) return `document name exceeds ${MAX_DOCUMENT_NAME_BYTES} bytes`
  if (CONTROL.test(name)) return 'document name contains control characters'
  return null
}

export function assertDocumentName(name: string): void {
  const problem = documentNameProblem(name)
  if (problem !== null) throw new ConcordError('CONCORD_ERR_DOC_INVALID_NAME', problem, { document: name })
}
