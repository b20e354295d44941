import { describe, it, expect } from 'vitest'
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build, createLogger } from 'vite'

describe('the client in a browser bundle', () => {
  it('builds with Vite for the browser and pulls in no Node built-ins', async () => {
    const entry = fileURLToPath(new URL('../packages/client/dist/index.js', import.meta.url))
    const outDir = mkdtempSync(join(tmpdir(), 'concord-bundle-'))
    const warnings: string[] = []
    const logger = createLogger('warn', { allowClearScreen: false })
    logger.warn = msg => { warnings.push(msg) }
    logger.warnOnce = msg => { warnings.push(msg) }
    try {
      await build({
        configFile: false,
        customLogger: logger,
        logLevel: 'warn',
        build: {
          outDir,
          emptyOutDir: true,
          minify: false,
          lib: { entry, formats: ['es'], fileName: 'concord-client' },
        },
      })
      const files = readdirSync(outDir)
      expect(files).toContain('concord-client.js')
      const code = readFileSync(join(outDir, 'concord-client.js'), 'utf8')
      // Vite replaces Node built-ins with an empty "browser external" shim and warns about it
      expect(code).not.toContain('__vite-browser-external')
      expect(code).not.toMatch(/from ['"]node:/)
      expect(warnings.filter(w => /externalized for browser compatibility/.test(w))).toEqual([])
      // the SDK itself and its Yjs dependencies are inside
      expect(code).toContain('createClient')
      expect(code).toContain('concord')
      expect(code.length).toBeGreaterThan(50_000)
    } finally {
      rmSync(outDir, { recursive: true, force: true })
    }
  })
})
