/** Native protocol versions this build speaks, oldest first. */
export const PROTOCOL_VERSIONS = [1] as const
export const PROTOCOL_VERSION_MIN = 1
export const PROTOCOL_VERSION_MAX = 1

/** The WebSocket subprotocol that marks a native Concord connection. */
export const NATIVE_SUBPROTOCOL = 'concord'

/**
 * Pick the highest version both sides speak, or `null` when the ranges do not
 * overlap. `supported` is the list of versions of the answering side.
 */
export function negotiateVersion(
  offeredMin: number,
  offeredMax: number,
  supported: readonly number[] = PROTOCOL_VERSIONS,
): number | null {
  let best: number | null = null
  for (const v of supported) if (v >= offeredMin && v <= offeredMax && (best === null || v > best)) best = v
  return best
}
