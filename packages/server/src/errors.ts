import { ConcordError } from '@concord/protocol'

/** Any thrown value as a `ConcordError` (unknown failures become CONCORD_ERR_SERVER_INTERNAL). */
export function toConcordError(err: unknown): ConcordError {
  if (err instanceof ConcordError) return err
  return new ConcordError('CONCORD_ERR_SERVER_INTERNAL', err instanceof Error ? err.message : String(err), { cause: err })
}
