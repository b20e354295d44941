import { describe, expect, it } from 'vitest'
import * as server from '@concord/server'
import type {
  ConcordServer, ServerOptions, ResolvedServerOptions, ServerServices, ServerConfig, Authenticate, AuthenticateContext, AuthResult,
  Authorize, AuthorizeContext, AuthConfig, ConcordClaims, JwtConfig, MintOptions, TokenVerifier, VerifiedToken, AccessStore,
  AccessState, AccessChange, RoleOverride, SessionIdentity, MemoryStorageOptions, StorageAdapter, StoredUpdate, LoadedDocument,
  AppendRecord, DocumentInfo, HistoryStore, StoredVersion, NewVersion, VersionStorage, WebhookEndpoint, WebhookEvent, Backplane,
  BackplaneHandlers, ControlMessage, DocumentLease, DocumentHandle, DocumentSession,
} from '@concord/server'
import { createRedisBackplane } from '@concord/server/backplane/redis'

// Every name @concord/server exported in 0.1 still works (the internal classes as deprecated
// re-exports), and the names a library user needs to build a cluster are there (docs/embedding.md).
// The type-only names are checked by the type-check of the tests (`npm run lint`).
type Exported = [ConcordServer, ServerOptions, ResolvedServerOptions, ServerServices, ServerConfig, Authenticate, AuthenticateContext,
  AuthResult, Authorize, AuthorizeContext, AuthConfig, ConcordClaims, JwtConfig, MintOptions, TokenVerifier, VerifiedToken, AccessStore,
  AccessState, AccessChange, RoleOverride, SessionIdentity, MemoryStorageOptions, StorageAdapter, StoredUpdate, LoadedDocument,
  AppendRecord, DocumentInfo, HistoryStore, StoredVersion, NewVersion, VersionStorage, WebhookEndpoint, WebhookEvent, Backplane,
  BackplaneHandlers, ControlMessage, DocumentLease, DocumentHandle, DocumentSession]

describe('the public API of @concord/server', () => {
  it('keeps every value exported by 0.1, and exports the Redis backplane constructor', () => {
    const values = ['createServer', 'VERSION', 'DEFAULTS', 'allowEveryone', 'mintToken', 'createTokenVerifier', 'roleFromToken',
      'AccessControl', 'createFileAccessStore', 'createMemoryAccessStore', 'matchesPattern', 'roleFor', 'createLogger', 'silentLogger',
      'createMemoryStorage', 'signWebhook', 'verifyWebhookSignature', 'ServerMetrics', 'DocumentRegistry', 'LiveDocument', 'ConfigError']
    const missing = values.filter(name => (server as Record<string, unknown>)[name] === undefined)
    expect(missing).toEqual([])
    expect(typeof createRedisBackplane).toBe('function')
    const typesChecked: Exported | null = null
    expect(typesChecked).toBeNull()
  })

  it('refuses options it cannot run with, before anything listens, with a coded ConfigError', () => {
    let error: unknown
    try {
      server.createServer({ auth: 'none', chunkBytes: 2, maxMessageBytes: 1 })
    } catch (err) {
      error = err
    }
    expect(error).toBeInstanceOf(server.ConfigError)
    expect(error).toBeInstanceOf(TypeError)
    expect((error as { code?: string }).code).toBe('CONCORD_ERR_CONFIG_INVALID')
    expect((error as Error).message).toMatch(/chunkBytes must not exceed maxMessageBytes/)
  })
})
