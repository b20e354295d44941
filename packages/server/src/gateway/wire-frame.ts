/**
 * A binary WebSocket message as one complete frame of the server's side (FIN, opcode 2, no mask),
 * built once and written as it is to every socket that receives the message. Sent through `ws`,
 * the same message is framed again for each socket, and its header and payload are two writes of
 * the net stream (corked into one writev); a fan-out to hundreds of sockets repeats that work per
 * recipient (bench scenario `bigroom`).
 */
export interface WireFrame {
  /** Header and payload, ready for the net socket. */
  readonly frame: Buffer
  /** The message itself: a view of `frame` after its header. */
  readonly payload: Buffer
}

/** The frame of the message made of `parts` (concatenated once, here). */
export function wireFrame(parts: readonly Uint8Array[]): WireFrame {
  let length = 0
  for (const p of parts) length += p.length
  const header = length < 126 ? 2 : length < 0x10000 ? 4 : 10
  const frame = Buffer.allocUnsafe(header + length)
  frame[0] = 0x82
  if (header === 2) {
    frame[1] = length
  } else if (header === 4) {
    frame[1] = 126
    frame.writeUInt16BE(length, 2)
  } else {
    frame[1] = 127
    frame.writeUInt32BE(Math.floor(length / 0x1_0000_0000), 2)
    frame.writeUInt32BE(length >>> 0, 6)
  }
  let at = header
  for (const p of parts) {
    frame.set(p, at)
    at += p.length
  }
  return { frame, payload: frame.subarray(header) }
}
