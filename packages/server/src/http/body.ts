import type { IncomingMessage } from 'node:http'
import { ConcordError } from '@concord/protocol'

/** A request body of at most `maxBytes` (CONCORD_ERR_MESSAGE_TOO_LARGE beyond). */
export async function readBody(req: IncomingMessage, maxBytes: number): Promise<Uint8Array> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > maxBytes) throw new ConcordError('CONCORD_ERR_MESSAGE_TOO_LARGE', `the body exceeds ${maxBytes} bytes`)
    chunks.push(chunk)
  }
  return new Uint8Array(Buffer.concat(chunks))
}

/** A JSON object body (an empty body is `{}`); CONCORD_ERR_HTTP_BAD_REQUEST for anything else. */
export async function readJsonObject(req: IncomingMessage, maxBytes = 64 * 1024): Promise<Record<string, unknown>> {
  const raw = Buffer.from(await readBody(req, maxBytes)).toString('utf8')
  let body: unknown
  try {
    body = JSON.parse(raw || '{}')
  } catch {
    throw new ConcordError('CONCORD_ERR_HTTP_BAD_REQUEST', 'the body is not JSON')
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new ConcordError('CONCORD_ERR_HTTP_BAD_REQUEST', 'the body must be a JSON object')
  return body as Record<string, unknown>
}
