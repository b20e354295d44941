import { describe, expect, it } from 'vitest'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { ConcordError, ERROR_CODES, type ErrorCode } from '@concord/protocol'
import { answerFailure, methodAllowed, requireMethod, SECURITY_HEADERS, sendBytes, sendCode, sendError, sendJson, sendPage, statusOf } from './responder.js'

/** What a route wrote: status, headers (lower-case names) and body. */
class FakeResponse {
  status = 0
  headers: Record<string, string | number> = {}
  body: string | undefined
  headersSent = false
  destroyed = false
  setHeader(name: string, value: string | number): void {
    this.headers[name.toLowerCase()] = value
  }
  writeHead(status: number, headers: Record<string, string | number> = {}): this {
    this.status = status
    for (const [k, v] of Object.entries(headers)) this.headers[k.toLowerCase()] = v
    this.headersSent = true
    return this
  }
  end(chunk?: string | Buffer): void {
    this.body = chunk === undefined ? undefined : chunk.toString()
  }
  destroy(): void {
    this.destroyed = true
  }
  json(): unknown {
    return JSON.parse(this.body ?? '')
  }
}

const fakeRes = (): FakeResponse & ServerResponse => new FakeResponse() as FakeResponse & ServerResponse
const fakeReq = (method: string): IncomingMessage => ({ method, headers: {} }) as IncomingMessage

describe('responder', () => {
  it('sends JSON with its length, never cached, bytes inside as base64', () => {
    const res = fakeRes()
    sendJson(res, 201, { a: 'é', bytes: new Uint8Array([1, 2, 3]).subarray(1) })
    expect(res.status).toBe(201)
    expect(res.headers).toMatchObject({ 'content-type': 'application/json', 'cache-control': 'no-store' })
    expect(res.headers['content-length']).toBe(Buffer.byteLength(res.body!))
    expect(res.json()).toEqual({ a: 'é', bytes: { base64: Buffer.from([2, 3]).toString('base64') } })
  })

  it('sends bytes as octet-stream', () => {
    const res = fakeRes()
    sendBytes(res, new Uint8Array([7, 8, 9]).subarray(1))
    expect(res.status).toBe(200)
    expect(res.headers).toMatchObject({ 'content-type': 'application/octet-stream', 'content-length': 2, 'cache-control': 'no-store' })
  })

  it('takes every error status from the protocol table, 400 where it lists none', () => {
    for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) {
      const listed: number | undefined = (ERROR_CODES[code] as { httpStatus?: number }).httpStatus
      expect(statusOf(code), code).toBe(listed ?? 400)
    }
    // where the admin and history routes once disagreed: the server's side, retryable
    expect(statusOf('CONCORD_ERR_DOC_LOAD_FAILED')).toBe(503)
    expect(statusOf('CONCORD_ERR_STORAGE_WRITE_FAILED')).toBe(503)
    expect(statusOf('CONCORD_ERR_MESSAGE_TOO_LARGE')).toBe(413)
    expect(statusOf('CONCORD_ERR_UPDATE_MALFORMED')).toBe(400)
  })

  it('answers an error with its code and message, or its code alone', () => {
    const res = fakeRes()
    sendError(res, new ConcordError('CONCORD_ERR_LIMIT_NAMED_VERSIONS', 'full'))
    expect(res.status).toBe(409)
    expect(res.json()).toEqual({ error: 'CONCORD_ERR_LIMIT_NAMED_VERSIONS', message: 'full' })
    const bare = fakeRes()
    sendCode(bare, 'CONCORD_ERR_SERVER_SHUTTING_DOWN', { status: 'draining' })
    expect(bare.status).toBe(503)
    expect(bare.body).toBe('{"status":"draining","error":"CONCORD_ERR_SERVER_SHUTTING_DOWN"}')
  })

  it('refuses another method with 405 and Allow', () => {
    const ok = fakeRes()
    expect(methodAllowed(fakeReq('HEAD'), ok, ['GET', 'HEAD'])).toBe(true)
    expect(ok.headers.allow).toBeUndefined()
    const res = fakeRes()
    let thrown: unknown
    try {
      requireMethod(fakeReq('PUT'), res, 'GET', 'DELETE')
    } catch (err) {
      thrown = err
    }
    expect(thrown).toMatchObject({ code: 'CONCORD_ERR_HTTP_METHOD_NOT_ALLOWED', message: 'use GET or DELETE' })
    expect(res.headers.allow).toBe('GET, DELETE')
    answerFailure(res, thrown, () => { throw new Error('not unexpected') })
    expect(res.status).toBe(405)
  })

  it('turns an unexpected failure into the error the route makes of it; a started answer is broken off', () => {
    const res = fakeRes()
    const seen: unknown[] = []
    const boom = new Error('boom')
    answerFailure(res, boom, err => {
      seen.push(err)
      return new ConcordError('CONCORD_ERR_SERVER_INTERNAL', 'see the log')
    })
    expect(seen).toEqual([boom])
    expect(res.status).toBe(500)
    expect(res.json()).toEqual({ error: 'CONCORD_ERR_SERVER_INTERNAL', message: 'see the log' })
    const started = fakeRes()
    started.writeHead(200)
    answerFailure(started, new ConcordError('CONCORD_ERR_HTTP_BAD_REQUEST'), () => { throw new Error('not called') })
    expect(started.destroyed).toBe(true)
  })

  it('sends a page with its CSP and the security headers, HEAD without the body', () => {
    const res = fakeRes()
    sendPage(fakeReq('HEAD'), res, '<p>hi</p>', "default-src 'none'")
    expect(res.headers).toMatchObject({ ...SECURITY_HEADERS, 'content-security-policy': "default-src 'none'", 'content-length': 9 })
    expect(res.body).toBeUndefined()
  })
})
