import { describe, it, expect, beforeAll, afterAll, afterEach } from 'vitest'
import { request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http'
import { fileURLToPath } from 'node:url'
import { chromium, type Browser, type Page } from 'playwright-core'
import type { ConcordClient } from '@concord/client'
import { connectClient, startServer, waitFor, type RunningServer } from './helpers.js'
// the app's `window.reactApp` (its type, and the global declaration of it)
import type {} from './fixtures/react/main.js'
import { CHROMIUM, CHROMIUM_ARGS, requireChromium, within } from './chromium.js'
import { buildFixtureSite, type FixtureSite } from './fixture-site.js'

// A small React app on @concord/react (e2e/fixtures/react), built with Vite in development mode (so
// React's own checks run: a getSnapshot that is not cached, an update loop, would log a console
// error, and every console error fails the test), in StrictMode, driven in Debian's Chromium.
const FIXTURE = fileURLToPath(new URL('./fixtures/react/', import.meta.url))

let site: FixtureSite | null = null
let browser: Browser | null = null
let server: RunningServer | null = null
const clients: ConcordClient[] = []
let pageErrors: string[] = []

beforeAll(async () => {
  requireChromium('the React hooks test')
  site = await buildFixtureSite(FIXTURE, {
    vite: { mode: 'development', define: { 'process.env.NODE_ENV': JSON.stringify('development') } },
    // the history API, forwarded to the test's Concord server as a reverse proxy in front of both would
    handle: (req, res) => {
      if (!req.url?.startsWith('/v1/')) return false
      forward(req, res)
      return true
    },
  })
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 30_000 })
})

/** Forward one request to the Concord server of the running test. */
function forward(req: IncomingMessage, res: ServerResponse): void {
  if (server === null) {
    res.writeHead(502).end()
    return
  }
  const upstream = httpRequest({ host: '127.0.0.1', port: server.port, method: req.method, path: req.url, headers: req.headers }, up => {
    res.writeHead(up.statusCode ?? 502, up.headers)
    up.pipe(res)
  })
  upstream.on('error', () => res.writeHead(502).end())
  req.pipe(upstream)
}

afterAll(async () => {
  if (browser !== null) await within(20_000, 'closing Chromium', browser.close())
  browser = null
  await site?.close()
  site = null
})

afterEach(async () => {
  for (const c of clients.splice(0)) c.close()
  await server?.close()
  server = null
  pageErrors = []
})

/** A page of its own browser context showing the app, mounted on `document` as `user`. */
async function openApp(document: string, user: string): Promise<Page> {
  const context = await browser!.newContext()
  const page = await context.newPage()
  page.setDefaultTimeout(15_000)
  page.on('console', message => {
    if (message.type() === 'error' || message.type() === 'warning') pageErrors.push(`${user}: console ${message.type()}: ${message.text()}`)
  })
  page.on('pageerror', error => pageErrors.push(`${user}: uncaught: ${error.stack ?? error.message}`))
  await page.goto(`${site!.origin}/index.html`)
  await page.waitForFunction(() => typeof window.reactApp === 'object')
  await page.evaluate(([u, d, n]) => window.reactApp.mount(u, d, n), [server!.url, document, user] as const)
  await page.getByTestId('status').filter({ hasText: 'saved' }).waitFor()
  return page
}

describe('@concord/react in Chromium', () => {
  it('two React apps on one document: text typed in one shows in the other, presence both ways, saving → saved, versions, and no listener left behind', async () => {
    server = await startServer()
    const DOC = 'react-notes'
    const ann = await openApp(DOC, 'Ann')
    const bob = await openApp(DOC, 'Bob')

    // presence: each app lists the other's name (and not its own)
    await expect.poll(() => ann.getByRole('list', { name: 'others' }).innerText(), { timeout: 15_000 }).toBe('Bob')
    await expect.poll(() => bob.getByRole('list', { name: 'others' }).innerText(), { timeout: 15_000 }).toBe('Ann')

    // Ann types through the textarea (useText + a Y.Text edit); Bob's textarea shows it
    const before = (await ann.evaluate(() => window.reactApp.statusSeen())).length
    await ann.getByRole('textbox', { name: 'text' }).pressSequentially('Hello from Ann', { delay: 5 })
    await expect.poll(() => bob.getByRole('textbox', { name: 'text' }).inputValue(), { timeout: 15_000 }).toBe('Hello from Ann')
    expect(await ann.getByRole('textbox', { name: 'text' }).inputValue()).toBe('Hello from Ann')
    // Bob sees Ann typing (useTyping)
    await expect.poll(() => bob.getByTestId('typing').innerText(), { timeout: 15_000 }).toBe('Ann')
    // Ann's status badge went saving → saved (useStatus), and rests on saved
    await ann.getByTestId('status').filter({ hasText: /^saved$/ }).waitFor()
    const seen = (await ann.evaluate(() => window.reactApp.statusSeen())).slice(before)
    expect(seen[0]).toBe('saving')
    expect(seen.at(-1)).toBe('saved')

    // Bob edits too: both converge
    const bobBox = bob.getByRole('textbox', { name: 'text' })
    await bobBox.press('End')
    await bobBox.pressSequentially(', and Bob', { delay: 5 })
    await expect.poll(() => ann.getByRole('textbox', { name: 'text' }).inputValue(), { timeout: 15_000 }).toBe('Hello from Ann, and Bob')

    // a named version made through the SDK (from Node) appears in Bob's list after a refresh (useVersions)
    const node = connectClient(server.url)
    clients.push(node)
    const h = node.open(DOC)
    await waitFor(() => h.doc.getText('body').toString() === 'Hello from Ann, and Bob', { timeoutMs: 15_000, message: 'the Node client to sync' })
    await h.createVersion('first draft')
    await bob.getByRole('button', { name: 'Refresh versions' }).click()
    await expect.poll(async () => [await bob.getByTestId('versions-state').innerText(), await bob.getByRole('list', { name: 'versions' }).innerText()], { timeout: 15_000 }).toEqual(['ready', 'first draft'])
    expect(await bob.getByTestId('versions-state').innerText()).toBe('ready')

    // listeners: a second part of Ann's page on the same document adds listeners, and unmounting it
    // takes exactly those away again
    const baseline = await ann.evaluate(() => window.reactApp.counts())
    await ann.evaluate(d => window.reactApp.mountWidget(d), DOC)
    await expect.poll(() => ann.getByTestId('widget').innerText(), { timeout: 15_000 }).toBe('23 characters, 1 others, saved')
    const withWidget = await ann.evaluate(() => window.reactApp.counts())
    expect(withWidget.handle).toBeGreaterThan(baseline.handle)
    expect(withWidget['text:body']).toBeGreaterThan(baseline['text:body'])
    expect(withWidget.awareness).toBeGreaterThan(baseline.awareness)
    await ann.evaluate(() => window.reactApp.unmountWidget())
    await expect.poll(() => ann.evaluate(() => window.reactApp.counts()), { timeout: 15_000 }).toEqual(baseline)
    // the widget's provider did not open the document, so it did not close it either
    expect(await ann.evaluate(() => window.reactApp.documents())).toEqual({ open: [DOC], closed: false })

    // unmounting Ann's app, the last user of the document, closes it: Bob sees Ann leave
    await ann.evaluate(() => window.reactApp.unmount())
    await expect.poll(() => ann.evaluate(() => window.reactApp.documents()), { timeout: 15_000 }).toEqual({ open: [], closed: true })
    const after = await ann.evaluate(() => window.reactApp.counts())
    expect(after.handle).toBe(0)
    expect(after['text:body']).toBe(0)
    await expect.poll(() => bob.getByRole('list', { name: 'others' }).innerText(), { timeout: 15_000 }).toBe('')

    expect(pageErrors).toEqual([])
  })
})
