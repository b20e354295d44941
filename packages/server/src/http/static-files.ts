import type { IncomingMessage, ServerResponse } from 'node:http'
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { extname, join, resolve, sep } from 'node:path'
import { SECURITY_HEADERS } from './responder.js'

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
  '.map': 'application/json',
}

/**
 * The Content-Security-Policy of the served app (the demo, as Vite builds it): scripts only as
 * files of this origin (module scripts and their chunks; no inline script, no eval), so markup
 * that reached the page could not run anything; fetches and the WebSocket to this origin only
 * ('self' covers ws:// and wss:// of the same host); no other site may frame it.
 *
 * Styles may be inline: the editor (Tiptap) adds a <style> element of its own and draws other
 * people's carets with style attributes. What an injected style could do is bounded by the rest:
 * images and fonts load from this origin only, so CSS cannot send what the page shows elsewhere.
 */
export const APP_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ')

/**
 * Serves a built single-page app (the demo) from `dir`: files by path, and `index.html` for
 * paths without an extension (client-side routes). Files under `assets/` carry a content hash
 * in their names and are cached for a year. Nothing outside `dir` is ever read.
 */
export function createStaticHandler(dir: string): (req: IncomingMessage, res: ServerResponse, path: string) => Promise<boolean> {
  const root = resolve(dir)
  return async (req, res, path) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false
    let decoded: string
    try {
      decoded = decodeURIComponent(path)
    } catch {
      return false
    }
    if (decoded.includes('\0')) return false
    let file = resolve(join(root, decoded))
    if (file !== root && !file.startsWith(root + sep)) return false
    let info = await stat(file).catch(() => null)
    if (info?.isDirectory()) {
      file = join(file, 'index.html')
      info = await stat(file).catch(() => null)
    }
    if (info === null || !info.isFile()) {
      // a client-side route: the app's shell
      if (extname(decoded) !== '') return false
      file = join(root, 'index.html')
      info = await stat(file).catch(() => null)
      if (info === null) return false
    }
    const immutable = file.startsWith(join(root, 'assets') + sep)
    res.writeHead(200, {
      'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
      'content-length': info.size,
      'cache-control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
      'content-security-policy': APP_CSP,
      ...SECURITY_HEADERS,
    })
    if (req.method === 'HEAD') {
      res.end()
      return true
    }
    createReadStream(file).on('error', () => res.destroy()).pipe(res)
    return true
  }
}
