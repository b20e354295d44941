import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { checkLayers, readImports, SERVER_LAYERS } from './check-layers.mjs'

// Each test writes a small repository (packages/<name>/src/...) to a temp dir and runs the check on it.
const roots: string[] = []
afterEach(() => {
  for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true })
})

function tree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'check-layers-'))
  roots.push(root)
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true })
    writeFileSync(join(root, path), text)
  }
  return root
}

/** A tree that follows every rule: one module per server layer, each importing what its layer may. */
const clean: Record<string, string> = {
  'packages/protocol/src/index.ts': `export * from './codec.js'\n`,
  'packages/protocol/src/codec.ts': `export const encode = (x: number): number => x\n`,
  'packages/server/src/index.ts': `export { createServer } from './server.js'\nexport type { ServerOptions } from './server-options.js'\n`,
  'packages/server/src/server-options.ts': `import type { Config } from './config/server-config.js'\nexport interface ServerOptions { config: Config }\n`,
  'packages/server/src/server.ts': [
    `import type { ServerOptions } from './server-options.js'`,
    `import { route } from './http/routes.js'`,
    `import { Gateway } from './gateway/gateway.js'`,
    `import { encode } from '@concord/protocol'`,
    `export function createServer(o: ServerOptions) { return [o, route, Gateway, encode] }`,
  ].join('\n'),
  'packages/server/src/cli/cli.ts': `import { createServer } from '../server.js'\nexport async function main() { const { Gateway } = await import('../gateway/gateway.js'); return [createServer, Gateway] }\n`,
  'packages/server/src/http/routes.ts': `import { exportDoc } from '../content/document-export.js'\nimport type { Authorizer } from '../auth/authorizer.js'\nimport { Metrics } from '../ops/metrics.js'\nexport const route = (a: Authorizer) => [a, exportDoc, Metrics]\n`,
  'packages/server/src/gateway/gateway.ts': `import { Registry } from '../documents/registry.js'\nimport type { Authorizer } from '../auth/authorizer.js'\nexport class Gateway { r = Registry; a?: Authorizer }\n`,
  'packages/server/src/ops/metrics.ts': `import type { MetricsPort } from '../documents/ports.js'\nexport class Metrics implements MetricsPort { count() {} }\n`,
  'packages/server/src/content/document-export.ts': `import { Registry } from '../documents/registry.js'\nexport const exportDoc = Registry\n`,
  'packages/server/src/auth/authorizer.ts': `import type { AccessStore } from '../storage/access-store.js'\nexport interface Authorizer { store: AccessStore }\n`,
  'packages/server/src/documents/ports.ts': `export interface MetricsPort { count(): void }\n`,
  'packages/server/src/documents/registry.ts': `import type { MetricsPort } from './ports.js'\nimport type { Storage } from '../storage/storage-adapter.js'\nimport type { Backplane } from '../backplane/backplane.js'\nexport class Registry { m?: MetricsPort; s?: Storage; b?: Backplane }\n`,
  'packages/server/src/documents/registry.test.ts': `import { Metrics } from '../ops/metrics.js'\nimport { Registry } from './registry.js'\nexport const t = [Metrics, Registry]\n`,
  'packages/server/src/documents/testing.ts': `import { Metrics } from '../ops/metrics.js'\nexport const testMetrics = new Metrics()\n`,
  'packages/server/src/storage/storage-adapter.ts': `import type { Config } from '../config/server-config.js'\nexport interface Storage { config: Config }\n`,
  'packages/server/src/storage/access-store.ts': `export interface AccessStore { get(): void }\n`,
  'packages/server/src/backplane/backplane.ts': `import { DEFAULTS } from '../config/server-config.js'\nexport interface Backplane { d: typeof DEFAULTS }\n`,
  'packages/server/src/config/server-config.ts': `import { readFileSync } from 'node:fs'\nexport const DEFAULTS = { read: readFileSync }\nexport type Config = typeof DEFAULTS\n`,
  'packages/client/src/index.ts': `export { Client } from './client.js'\n`,
  'packages/client/src/client.ts': `import { encode } from '@concord/protocol'\nimport type { Store } from './store/index.js'\nexport class Client { e = encode; s?: Store }\n`,
  'packages/client/src/store/index.ts': `export interface Store { load(): void }\n`,
  'packages/client/src/node.ts': `import { readFile } from 'node:fs/promises'\nimport type { Store } from './store/index.js'\nexport const fileStore = (): Store => ({ load: () => void readFile })\n`,
  'packages/client/src/client.test.ts': `import { tmpdir } from 'node:os'\nimport { fileStore } from './node.js'\nexport const t = [tmpdir, fileStore]\n`,
}

describe('check-layers', () => {
  it('passes on a clean tree', () => {
    const result = checkLayers(tree(clean))
    expect(result.problems).toEqual([])
    expect(result.packages).toEqual(['protocol', 'server', 'client'])
    expect(result.files).toBe(Object.keys(clean).length)
  })

  it('fails on an import against the layer direction, type-only ones included', () => {
    const root = tree({
      ...clean,
      'packages/server/src/documents/registry.ts': `import { Metrics } from '../ops/metrics.js'\nimport type { Authorizer } from '../auth/authorizer.js'\nexport class Registry { m = Metrics; a?: Authorizer }\n`,
      'packages/server/src/http/routes.ts': `import type { Gateway } from '../gateway/gateway.js'\nexport const route = (g: Gateway) => g\n`,
      'packages/server/src/storage/storage-adapter.ts': `export type Storage = import('../backplane/backplane.js').Backplane\n`,
    })
    const { problems } = checkLayers(root)
    // registry -> ops/metrics -> documents/ports is no cycle (ports imports nothing), so only the layer rule speaks
    expect(problems).toEqual([
      'packages/server/src/documents/registry.ts:1 imports packages/server/src/ops/metrics.ts: documents/ may not import ops/ (allowed: storage/, backplane/, config/)',
      'packages/server/src/documents/registry.ts:2 type-only import of packages/server/src/auth/authorizer.ts: documents/ may not import auth/ (allowed: storage/, backplane/, config/)',
      'packages/server/src/http/routes.ts:1 type-only import of packages/server/src/gateway/gateway.ts: http/ may not import gateway/ (allowed: documents/, content/, ops/, auth/, regions/, storage/, backplane/, config/)',
      'packages/server/src/storage/storage-adapter.ts:1 type-only import of packages/server/src/backplane/backplane.ts: storage/ may not import backplane/ (allowed: config/)',
    ])
  })

  it('fails on a type-only import cycle, which the compiled JavaScript does not show', () => {
    const root = tree({
      ...clean,
      'packages/server/src/documents/ports.ts': `import type { Registry } from './registry.js'\nexport interface MetricsPort { count(r: Registry): void }\n`,
    })
    expect(checkLayers(root).problems).toEqual([
      'import cycle in server: packages/server/src/documents/ports.ts -(type)-> packages/server/src/documents/registry.ts -(type)-> packages/server/src/documents/ports.ts',
    ])
  })

  it('finds a cycle through export-from and dynamic import, in any package', () => {
    const root = tree({
      ...clean,
      'packages/protocol/src/codec.ts': `export const encode = (x: number): number => x\nexport const load = () => import('./frame.js')\n`,
      'packages/protocol/src/frame.ts': `export { encode } from './codec.js'\n`,
    })
    expect(checkLayers(root).problems).toEqual([
      'import cycle in protocol: packages/protocol/src/codec.ts -> packages/protocol/src/frame.ts -> packages/protocol/src/codec.ts',
    ])
  })

  it('fails on a browser-side client file importing a Node built-in or a Node-only file', () => {
    const root = tree({
      ...clean,
      'packages/client/src/client.ts': `import { readFileSync } from 'node:fs'\nimport { fileStore } from './node.js'\nimport { EventEmitter } from 'events'\nexport class Client { r = readFileSync; f = fileStore; e = EventEmitter }\n`,
    })
    expect(checkLayers(root).problems).toEqual([
      'packages/client/src/client.ts:1 imports the Node built-in node:fs; the client must run in browsers (only node.ts, file-offline-store.ts may)',
      'packages/client/src/client.ts:2 imports the Node-only ./node.js; the client must run in browsers (only node.ts, file-offline-store.ts may)',
      'packages/client/src/client.ts:3 imports the Node built-in events; the client must run in browsers (only node.ts, file-offline-store.ts may)',
    ])
  })

  it('keeps the React bindings on the SDK: no server, no protocol, no Node built-in', () => {
    const root = tree({
      ...clean,
      'packages/react/src/index.ts': `export { useDocument } from './use-document.js'\n`,
      'packages/react/src/use-document.ts': `import type { DocHandle } from '@concord/client'\nimport { encode } from '@concord/protocol'\nimport { createServer } from '@concord/server'\nimport { readFileSync } from 'node:fs'\nexport const useDocument = (h: DocHandle) => [h, encode, createServer, readFileSync]\n`,
      'packages/react/src/use-document.test.ts': `import { createServer } from '@concord/server'\nimport { tmpdir } from 'node:os'\nexport const t = [createServer, tmpdir]\n`,
    })
    const result = checkLayers(root)
    expect(result.packages).toEqual(['protocol', 'server', 'client', 'react'])
    expect(result.problems).toEqual([
      'packages/react/src/use-document.ts:2 imports @concord/protocol, which react may not import (allowed: @concord/client)',
      'packages/react/src/use-document.ts:3 imports @concord/server, which react may not import (allowed: @concord/client)',
      'packages/react/src/use-document.ts:4 imports the Node built-in node:fs; the React bindings must run in browsers',
    ])
  })

  it('keeps the package boundaries: what each package may import, no own index, no module outside a layer', () => {
    const root = tree({
      ...clean,
      'packages/protocol/src/codec.ts': `import type { Client } from '@concord/client'\nexport const encode = (x: number, _c?: Client): number => x\n`,
      'packages/server/src/config/server-config.ts': `import type { ServerOptions } from '../index.js'\nexport const DEFAULTS = {}\nexport type Config = typeof DEFAULTS & Partial<ServerOptions>\n`,
      'packages/server/src/helpers.ts': `export const h = 1\n`,
      'packages/server/src/misc/thing.ts': `export const t = 1\n`,
      'packages/client/src/node.ts': `import type { Store } from './store/index.js'\nimport { helper } from '../../server/src/helpers.js'\nimport { x } from './missing.js'\nexport const fileStore = (): Store => ({ load: () => [helper, x] })\n`,
    })
    expect(checkLayers(root).problems).toEqual([
      'packages/protocol/src/codec.ts:1 imports @concord/client, which protocol may not import (allowed: nothing of ours)',
      'packages/server/src/helpers.ts lives directly in src; every module but server.ts, server-options.ts, index.ts belongs in a layer folder',
      'packages/server/src/misc/ is not a layer of the table in scripts/check-layers.mjs (' + Object.keys(SERVER_LAYERS).join(', ') + ')',
      'packages/server/src/config/server-config.ts:1 imports its own package index (../index.js)',
      'packages/server/src/config/server-config.ts:1 type-only import of packages/server/src/index.ts: config/ may not import the composition root (server.ts, server-options.ts, index.ts) (allowed: nothing of the server)',
      // config -> index -> server -> gateway -> documents -> backplane -> config, reported from its first file by name
      'import cycle in server: packages/server/src/backplane/backplane.ts -> packages/server/src/config/server-config.ts -(type)-> packages/server/src/index.ts -> packages/server/src/server.ts -> packages/server/src/gateway/gateway.ts -> packages/server/src/documents/registry.ts -(type)-> packages/server/src/backplane/backplane.ts',
      'packages/client/src/node.ts:2 imports ../../server/src/helpers.js, outside packages/client/src',
      'packages/client/src/node.ts:3 imports ./missing.js, which resolves to no source file',
    ])
  })

  it('reads every kind of import, and tells type-only ones apart', () => {
    const root = tree({
      'a.ts': [
        `import x from './default.js'`,
        `import type { T } from './type.js'`,
        `import { type U, type V } from './inline-types.js'`,
        `import { type W, value } from './mixed.js'`,
        `import './side-effect.js'`,
        `export * from './star.js'`,
        `export type { Y } from './export-type.js'`,
        `import fs = require('node:fs')`,
        `const lazy = () => import('./dynamic.js')`,
        `let z: import('./in-type.js').Z`,
        `// import { no } from './comment.js'`,
        `const s = "import { no } from './string.js'"`,
      ].join('\n'),
    })
    expect(readImports(join(root, 'a.ts')).map(i => [i.line, i.specifier, i.typeOnly])).toEqual([
      [1, './default.js', false],
      [2, './type.js', true],
      [3, './inline-types.js', true],
      [4, './mixed.js', false],
      [5, './side-effect.js', false],
      [6, './star.js', false],
      [7, './export-type.js', true],
      [8, 'node:fs', false],
      [9, './dynamic.js', false],
      [10, './in-type.js', true],
    ])
  })
})
