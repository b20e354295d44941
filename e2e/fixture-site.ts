import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { tmpdir } from 'node:os'
import { extname, join, normalize } from 'node:path'
import { build, createLogger, type InlineConfig } from 'vite'

/** A fixture page built with Vite and served over HTTP on 127.0.0.1 (the browser tests' page). */
export interface FixtureSite {
  /** http://127.0.0.1:<port> */
  readonly origin: string
  close(): Promise<void>
}

export interface FixtureSiteOptions {
  /** Extra Vite settings (e.g. `mode` and `define` for React's development build). */
  vite?: InlineConfig
  /** Answers a request before the static files do (return true when it did), e.g. a reverse proxy. */
  handle?: (req: IncomingMessage, res: ServerResponse) => boolean
}

/**
 * Builds the page in `fixtureDir` into a temporary directory and serves it. The build fails the
 * test if anything the page imports needs a Node built-in in the browser (Vite's "externalized for
 * browser compatibility" warning): what the page uses must run in a browser as it is.
 */
export async function buildFixtureSite(fixtureDir: string, options: FixtureSiteOptions = {}): Promise<FixtureSite> {
  const dir = mkdtempSync(join(tmpdir(), 'concord-site-'))
  const warnings: string[] = []
  const logger = createLogger('warn', { allowClearScreen: false })
  logger.warn = msg => { warnings.push(msg) }
  logger.warnOnce = msg => { warnings.push(msg) }
  try {
    await build({
      configFile: false,
      root: fixtureDir,
      base: './',
      customLogger: logger,
      logLevel: 'warn',
      ...options.vite,
      build: { outDir: dir, emptyOutDir: true, minify: false, sourcemap: false, chunkSizeWarningLimit: 10_000 },
    })
  } catch (err) {
    rmSync(dir, { recursive: true, force: true })
    throw err
  }
  const externalized = warnings.filter(w => /externalized for browser compatibility/.test(w))
  if (externalized.length > 0) {
    rmSync(dir, { recursive: true, force: true })
    throw new Error(`the page in ${fixtureDir} needs Node built-ins in the browser:\n${externalized.join('\n')}`)
  }
  const http = createHttpServer((req, res) => {
    if (options.handle?.(req, res) === true) return
    const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)).replace(/^(\.\.[/\\])+/, '')
    const file = join(dir, path === '/' ? 'index.html' : path)
    if (!file.startsWith(dir) || !existsSync(file)) {
      res.writeHead(404).end()
      return
    }
    const type = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css' }[extname(file)] ?? 'application/octet-stream'
    res.writeHead(200, { 'content-type': `${type}; charset=utf-8`, 'cache-control': 'no-store' }).end(readFileSync(file))
  })
  await new Promise<void>(resolve => http.listen(0, '127.0.0.1', () => resolve()))
  return {
    origin: `http://127.0.0.1:${(http.address() as { port: number }).port}`,
    async close() {
      http.closeAllConnections()
      await new Promise<void>(resolve => http.close(() => resolve()))
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
