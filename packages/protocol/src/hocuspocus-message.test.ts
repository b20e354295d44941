import { describe, expect, it } from 'vitest'
import { decodeHocuspocusMessage, encodeHocuspocusKey, encodeHocuspocusMessage, hocuspocusDocumentName, HocuspocusDecodeError } from './hocuspocus-message.js'

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
const bytes = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, 'hex'))

// The bytes below are what @hocuspocus/provider 4.7 sends and expects (checked against the real
// provider end to end in e2e/hocuspocus-provider.test.ts).
describe('the Hocuspocus wire format', () => {
  it('decodes a provider\'s token, sync, awareness, stateless and keepalive messages', () => {
    // "doc", Auth, Token, "tok", provider version "4.7.0"
    expect(decodeHocuspocusMessage(bytes('03646f63' + '02' + '00' + '03746f6b' + '05342e372e30'))).toEqual({ type: 'token', key: 'doc', token: 'tok', providerVersion: '4.7.0' })
    expect(decodeHocuspocusMessage(bytes('03646f63' + '02' + '00' + '00'))).toEqual({ type: 'token', key: 'doc', token: '', providerVersion: null })
    // sync step 1 with an empty state vector
    expect(decodeHocuspocusMessage(bytes('03646f63' + '00' + '00' + '0100'))).toEqual({ type: 'y', key: 'doc', message: { type: 'sync-step1', stateVector: bytes('00') } })
    expect(decodeHocuspocusMessage(bytes('03646f63' + '00' + '02' + '020000'))).toEqual({ type: 'y', key: 'doc', message: { type: 'update', update: bytes('0000') } })
    expect(decodeHocuspocusMessage(bytes('03646f63' + '01' + '0100'))).toEqual({ type: 'y', key: 'doc', message: { type: 'awareness', update: bytes('00') } })
    expect(decodeHocuspocusMessage(bytes('03646f63' + '03'))).toEqual({ type: 'y', key: 'doc', message: { type: 'query-awareness' } })
    expect(decodeHocuspocusMessage(bytes('03646f63' + '05' + '026869'))).toEqual({ type: 'stateless', key: 'doc', payload: 'hi' })
    expect(decodeHocuspocusMessage(bytes('0a'))).toEqual({ type: 'pong' })
    expect(decodeHocuspocusMessage(bytes('03646f63' + '07'))).toEqual({ type: 'close', key: 'doc' })
    // a routing key with a session id (the provider's sessionAwareness)
    const keyed = decodeHocuspocusMessage(bytes('0664006162637a' + '03'))
    expect(keyed).toMatchObject({ type: 'y', key: 'd\0abcz' })
    expect(hocuspocusDocumentName('d\0abcz')).toBe('d')
    expect(hocuspocusDocumentName('plain')).toBe('plain')
  })

  it('refuses malformed, truncated and server-only messages with the key when it could be read', () => {
    for (const h of ['', 'ff', '05616263', '03646f6300', '03646f630000', '03646f63000005', '03646f630200']) {
      expect(() => decodeHocuspocusMessage(bytes(h)), h).toThrow(HocuspocusDecodeError)
    }
    for (const type of ['04', '06', '08', '0b', '7f']) {
      let error: HocuspocusDecodeError | undefined
      try { decodeHocuspocusMessage(bytes('03646f63' + type)) } catch (e) { error = e as HocuspocusDecodeError }
      expect(error?.key).toBe('doc')
      expect(error?.unknownType).toBe(Number.parseInt(type, 16))
    }
    // a server's "authenticated" is not accepted from a client
    expect(() => decodeHocuspocusMessage(bytes('03646f63' + '02' + '02' + '00'))).toThrow(/not accepted/)
  })

  it('encodes the server\'s messages', () => {
    expect(hex(encodeHocuspocusMessage({ type: 'authenticated', key: 'doc', scope: 'readonly' }))).toBe('03646f63' + '02' + '02' + '08' + Buffer.from('readonly').toString('hex'))
    expect(hex(encodeHocuspocusMessage({ type: 'permission-denied', key: 'doc', reason: 'no' }))).toBe('03646f63' + '02' + '01' + '026e6f')
    expect(hex(encodeHocuspocusMessage({ type: 'token-request', key: 'doc' }))).toBe('03646f63' + '02' + '00')
    expect(hex(encodeHocuspocusMessage({ type: 'sync-status', key: 'doc', applied: true }))).toBe('03646f63' + '08' + '01')
    expect(hex(encodeHocuspocusMessage({ type: 'sync-status', key: 'doc', applied: false }))).toBe('03646f63' + '08' + '00')
    expect(hex(encodeHocuspocusMessage({ type: 'close', key: 'doc', reason: 'x' }))).toBe('03646f63' + '07' + '0178')
    expect(hex(encodeHocuspocusMessage({ type: 'stateless', key: 'doc', payload: 'hi' }))).toBe('03646f63' + '05' + '026869')
    expect(hex(encodeHocuspocusMessage({ type: 'ping' }))).toBe('09')
    expect(hex(encodeHocuspocusKey('doc'))).toBe('03646f63')
  })
})
