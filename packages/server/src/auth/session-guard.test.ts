import { describe, expect, it } from 'vitest'
import type { IncomingMessage } from 'node:http'
import { AccessControl } from './access-control.js'
import { Authorizer, type SessionGrant } from './session-guard.js'
import type { AuthenticateContext } from './auth-hooks.js'

const log = { error: () => undefined }
const request = {} as IncomingMessage

function authorizer(access = AccessControl.inMemory()): Authorizer {
  // token "<user>:<role>", or none: anyone may write
  return new Authorizer({
    access,
    timeoutMs: 1_000,
    authenticate: ({ token }) => {
      if (token === '') return { userId: null, role: 'write' }
      const [userId, role] = token.split(':') as [string, 'read' | 'write' | 'admin']
      return { userId, role, tenant: 'acme' }
    },
  })
}

const ask = (a: Authorizer, token: string, document = 'doc'): Promise<SessionGrant> =>
  a.grant({ document, token, transport: 'native', request } satisfies AuthenticateContext, log)

describe('Authorizer grants', () => {
  it('sessions with the same credential share one grant, which cannot be changed; any difference gets its own', async () => {
    const a = authorizer()
    const anyone = await ask(a, '')
    expect(await ask(a, '')).toBe(anyone)
    expect(Object.isFrozen(anyone)).toBe(true)
    expect(() => { (anyone as { role: string }).role = 'admin' }).toThrow()

    const adaWrites = await ask(a, 'ada:write')
    const adaReads = await ask(a, 'ada:read')
    const bobWrites = await ask(a, 'bob:write')
    expect([adaWrites.userId, adaWrites.role]).toEqual(['ada', 'write'])
    expect([adaReads.userId, adaReads.role]).toEqual(['ada', 'read'])
    expect([bobWrites.userId, bobWrites.role]).toEqual(['bob', 'write'])
    expect(await ask(a, 'bob:write')).toBe(bobWrites)
    // the shared grant is the last one made: earlier ones are not changed by later ones
    expect(anyone).toMatchObject({ userId: null, role: 'write', credentialRole: 'write' })
  })

  it('an administrator\'s role override on one document gives that document\'s session its own role, not the others\'', async () => {
    const access = AccessControl.inMemory()
    const a = authorizer(access)
    await access.setRole('acme', 'ada', 'secret', 'read')
    const onSecret = await ask(a, 'ada:write', 'secret')
    const elsewhere = await ask(a, 'ada:write', 'notes')
    expect(onSecret).toMatchObject({ role: 'read', credentialRole: 'write' })
    expect(elsewhere).toMatchObject({ role: 'write', credentialRole: 'write' })
    expect(await ask(a, 'ada:write', 'secret')).toMatchObject({ role: 'read' })
  })
})
