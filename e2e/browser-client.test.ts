import { describe, it, expect, beforeAll, afterAll, afterEach } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium, type BrowserContext, type Page } from 'playwright-core'
import * as Y from 'yjs'
import { createServer, type ConcordServer } from '@concord/server'
import { createSqliteStorage } from '@concord/server/storage/sqlite'
import type { ConcordClient } from '@concord/client'
import { connectClient, freePort, startServer, waitFor, type RunningServer } from './helpers.js'
// the page's `window.concord` (its type, and the global declaration of it)
import type {} from './fixtures/browser/main.js'
import { CHROMIUM, CHROMIUM_ARGS, requireChromium, within } from './chromium.js'
import { buildFixtureSite, type FixtureSite } from './fixture-site.js'

// Debian's Chromium, driven by playwright-core; `npm test` installs it (scripts/ensure-system-packages.mjs)
const FIXTURE = fileURLToPath(new URL('./fixtures/browser/', import.meta.url))

/** The test page (built once) and the static server that serves it. */
let site: FixtureSite | null = null
/** Per test: what to close and remove afterwards. */
const contexts = new Set<BrowserContext>()
const servers: ConcordServer[] = []
const running: RunningServer[] = []
const clients: ConcordClient[] = []
const dirs: string[] = []
/** Console errors and uncaught exceptions of every page, except the ones a test expects. */
let pageErrors: string[] = []
let expectedConsoleErrors: RegExp[] = []

beforeAll(async () => {
  requireChromium()
  site = await buildFixtureSite(FIXTURE)
})

afterAll(async () => {
  await site?.close()
  site = null
})

afterEach(async () => {
  for (const c of clients.splice(0)) c.close()
  for (const context of [...contexts]) await closeContext(context)
  for (const s of servers.splice(0)) await s.close()
  for (const r of running.splice(0)) await r.close()
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
  pageErrors = []
  expectedConsoleErrors = []
})

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  dirs.push(dir)
  return dir
}

const watched = new WeakSet<Page>()
function watch(page: Page): Page {
  if (watched.has(page)) return page
  watched.add(page)
  page.setDefaultTimeout(15_000)
  page.on('console', message => {
    if (message.type() !== 'error') return
    const text = message.text()
    if (!expectedConsoleErrors.some(re => re.test(text))) pageErrors.push(`console error: ${text}`)
  })
  page.on('pageerror', error => pageErrors.push(`uncaught: ${error.stack ?? error.message}`))
  return page
}

async function launch(profileDir: string): Promise<BrowserContext> {
  const context = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 30_000,
  })
  contexts.add(context)
  context.on('page', watch)
  context.pages().forEach(watch)
  return context
}

async function closeContext(context: BrowserContext): Promise<void> {
  contexts.delete(context)
  await within(20_000, 'closing Chromium', context.close())
}

/** A page of `context` showing the test site, with `window.concord` ready. */
async function openPage(context: BrowserContext, page?: Page): Promise<Page> {
  const p = watch(page ?? context.pages()[0] ?? await context.newPage())
  await p.goto(`${site!.origin}/index.html`)
  await p.waitForFunction(() => typeof window.concord === 'object')
  return p
}

/** The text an editor shows, without the remote carets' name labels. */
function editorText(page: Page): Promise<string> {
  return page.locator('.cm-content').evaluate(el => {
    const copy = el.cloneNode(true) as HTMLElement
    copy.querySelectorAll('.cm-ySelectionCaret').forEach(caret => caret.remove())
    return copy.textContent ?? ''
  })
}

function textOf(loaded: { snapshot: Uint8Array | null; updates: { update: Uint8Array }[] }, field: string): string {
  const doc = new Y.Doc()
  if (loaded.snapshot !== null) Y.applyUpdate(doc, loaded.snapshot)
  for (const u of loaded.updates) Y.applyUpdate(doc, u.update)
  return doc.getText(field).toString()
}

describe('the client in Chromium', () => {
  it('the IndexedDB store keeps, replaces, separates and removes snapshots, and reports a failure clearly', async () => {
    const context = await launch(tempDir('concord-chromium-'))
    const page = await openPage(context)
    const result = await within(15_000, 'store round trip', page.evaluate(db => window.concord.storeRoundTrip(db), 'round-trip'))
    expect(result).toEqual({
      emptyAtFirst: null,
      first: { state: [1, 2, 3], pending: [{ seq: 4, update: [9] }], nextSeq: 5 },
      replaced: { state: [4, 5], pending: [], nextSeq: 6 },
      otherDb: null,
      removed: null,
      kept: { state: [7], pending: [], nextSeq: 1 },
    })
    const message = await within(15_000, 'newer database', page.evaluate(db => window.concord.openNewerDatabase(db), 'newer'))
    expect(message).toMatch(/^IndexedDB offline store: opening database "newer" failed \(VersionError: /)
    expect(pageErrors).toEqual([])
  })

  it('edits made offline survive a reload and a browser restart in IndexedDB, show before any server is reachable, and reach the server once it is', async () => {
    const DOC = 'browser-offline'
    const DB = 'concord-e2e'
    // nothing listens here until the server starts at the end
    const port = await freePort()
    const url = `ws://127.0.0.1:${port}`
    // Chromium logs every refused connection to the console; those (and only those) are expected
    expectedConsoleErrors.push(new RegExp(`^WebSocket connection to 'ws://127\\.0\\.0\\.1:${port}/' failed`))
    const profile = tempDir('concord-chromium-')

    let context = await launch(profile)
    let page = await openPage(context)
    expect(await within(15_000, 'open', page.evaluate(([u, d, db]) => window.concord.open(u, d, db), [url, DOC, DB] as const)))
      .toMatchObject({ text: '', saved: true, pendingCount: 0 })
    expect(await page.evaluate(() => window.concord.type('Written offline. '))).toMatchObject({ saved: false, pendingCount: 1 })
    await within(15_000, 'whenPersisted', page.evaluate(() => window.concord.whenPersisted()))
    expect(await page.evaluate(([db, d]) => window.concord.stored(db, d), [DB, DOC] as const)).toEqual({ text: 'Written offline. ', pending: 1, writers: [{ pending: 1, live: true }] })

    // reload: the text is back from IndexedDB while the server is still unreachable
    await page.reload()
    await page.waitForFunction(() => typeof window.concord === 'object')
    const reloaded = await within(15_000, 'open after reload', page.evaluate(([u, d, db]) => window.concord.open(u, d, db), [url, DOC, DB] as const))
    expect(reloaded).toMatchObject({ text: 'Written offline. ', saved: false, pendingCount: 1 })
    expect(reloaded.clientStatus).not.toBe('connected')
    await page.evaluate(() => window.concord.type('After a reload. '))
    await within(15_000, 'whenPersisted', page.evaluate(() => window.concord.whenPersisted()))

    // close the browser and start it again on the same profile: IndexedDB is on disk
    await closeContext(context)
    context = await launch(profile)
    page = await openPage(context)
    const restarted = await within(15_000, 'open after restart', page.evaluate(([u, d, db]) => window.concord.open(u, d, db), [url, DOC, DB] as const))
    expect(restarted).toMatchObject({ text: 'Written offline. After a reload. ', saved: false, pendingCount: 2 })
    expect(restarted.clientStatus).not.toBe('connected')

    // the server comes up (SQLite, as in production) where the page keeps trying
    const dataDir = tempDir('concord-browser-data-')
    const server = createServer({ auth: 'none', storage: createSqliteStorage({ dataDir }) })
    servers.push(server)
    await server.listen(port, '127.0.0.1')
    const synced = await waitFor(async () => {
      const info = await page.evaluate(() => window.concord.info())
      return info.saved && info.status === 'synced' ? info : false
    }, { timeoutMs: 15_000, message: 'the page to report saved' })
    expect(synced).toMatchObject({ text: 'Written offline. After a reload. ', pendingCount: 0, clientStatus: 'connected' })

    // what a user on another machine sees, and what is durable on the server
    const node = connectClient(url)
    clients.push(node)
    const other = node.open(DOC)
    await waitFor(() => other.doc.getText('t').toString() === 'Written offline. After a reload. ',
      { timeoutMs: 15_000, message: () => `the Node client to receive the text (has "${other.doc.getText('t').toString()}")` })
    expect(textOf(await server.storage.load(DOC), 't')).toBe('Written offline. After a reload. ')
    // the acks reached IndexedDB too: nothing is left to re-send after the next reload
    await waitFor(async () => (await page.evaluate(([db, d]) => window.concord.stored(db, d), [DB, DOC] as const))?.pending === 0,
      { timeoutMs: 15_000, message: 'IndexedDB to hold no pending update' })
    expect(pageErrors).toEqual([])
  })

  it('two tabs offline: each shows the other\'s edits at once, IndexedDB keeps both tabs\' unsent edits apart, and the tab left open sends the closed one\'s once the server is up', async () => {
    const DOC = 'two-tabs'
    const DB = 'concord-tabs'
    // nothing listens here until the server starts
    const port = await freePort()
    const url = `ws://127.0.0.1:${port}`
    expectedConsoleErrors.push(new RegExp(`^WebSocket connection to 'ws://127\\.0\\.0\\.1:${port}/' failed`))
    const context = await launch(tempDir('concord-chromium-'))
    const ada = await openPage(context)
    const bea = await openPage(context, await context.newPage())
    const open = (page: Page) => within(15_000, 'open', page.evaluate(([u, d, db]) => window.concord.open(u, d, db), [url, DOC, DB] as const))
    await open(ada)
    await open(bea)
    await ada.evaluate(() => window.concord.type('Ada offline. '))
    await bea.evaluate(() => window.concord.type('Bea offline. '))
    // each tab shows the other's edit without any server (BroadcastChannel)
    const both = (text: string): boolean => text.includes('Ada offline. ') && text.includes('Bea offline. ')
    for (const page of [ada, bea]) {
      await waitFor(async () => both((await page.evaluate(() => window.concord.info())).text), { timeoutMs: 15_000, message: 'both edits in both tabs' })
    }
    // each tab saves and will send only its own edit
    expect(await ada.evaluate(() => window.concord.info())).toMatchObject({ pendingCount: 1, saved: false })
    expect(await bea.evaluate(() => window.concord.info())).toMatchObject({ pendingCount: 1, saved: false })
    for (const page of [ada, bea]) await within(15_000, 'whenPersisted', page.evaluate(() => window.concord.whenPersisted()))
    // one record, two writers' unsent edits: neither tab's save overwrote the other's
    const kept = await bea.evaluate(([db, d]) => window.concord.stored(db, d), [DB, DOC] as const)
    expect(kept?.writers).toEqual([{ pending: 1, live: true }, { pending: 1, live: true }])
    expect(both(kept!.text)).toBe(true)

    // Ada's tab closes with its edit never sent; Bea keeps typing
    await ada.close()
    await bea.evaluate(() => window.concord.type('Bea again. '))

    // the server comes up: Bea's tab sends its own edits and the ones Ada's tab left
    const dataDir = tempDir('concord-browser-data-')
    const server = createServer({ auth: 'none', storage: createSqliteStorage({ dataDir }) })
    servers.push(server)
    await server.listen(port, '127.0.0.1')
    const synced = await waitFor(async () => {
      const info = await bea.evaluate(() => window.concord.info())
      return info.saved && info.status === 'synced' ? info : false
    }, { timeoutMs: 20_000, message: 'Bea\'s tab to report saved' })
    expect(both(synced.text) && synced.text.includes('Bea again. ')).toBe(true)
    const node = connectClient(url)
    clients.push(node)
    const other = node.open(DOC)
    await waitFor(() => other.doc.getText('t').toString() === synced.text,
      { timeoutMs: 15_000, message: () => `the Node client to receive "${synced.text}" (has "${other.doc.getText('t').toString()}")` })
    expect(textOf(await server.storage.load(DOC), 't')).toBe(synced.text)
    // nothing of either tab is left to send
    await waitFor(async () => (await bea.evaluate(([db, d]) => window.concord.stored(db, d), [DB, DOC] as const))?.pending === 0,
      { timeoutMs: 15_000, message: 'IndexedDB to hold no unsent update' })

    // a tab opened now, online, shows everything and has nothing to send; typing in it reaches Bea's tab through both paths
    const cat = await openPage(context, await context.newPage())
    expect(await open(cat)).toMatchObject({ pendingCount: 0 })
    await waitFor(async () => (await cat.evaluate(() => window.concord.info())).text === synced.text, { timeoutMs: 15_000, message: 'the new tab to show the text' })
    await cat.evaluate(() => window.concord.type('Cat online.'))
    await waitFor(async () => (await bea.evaluate(() => window.concord.info())).text.endsWith('Cat online.'), { timeoutMs: 15_000, message: 'the new tab\'s edit in Bea\'s tab' })
    await waitFor(() => other.doc.getText('t').toString().endsWith('Cat online.'), { timeoutMs: 15_000, message: 'the new tab\'s edit on the server' })
    expect(pageErrors).toEqual([])
  })

  it('CodeMirror 6 with y-codemirror.next on a handle: typing shows in the other page with the typist\'s named caret, and undo reverts only one\'s own text', async () => {
    const server = await startServer()
    running.push(server)
    const context = await launch(tempDir('concord-chromium-'))
    const ada = await openPage(context)
    const grace = await openPage(context, await context.newPage())
    await within(15_000, 'editor 1', ada.evaluate(u => window.concord.openEditor(u, 'shared-editor', { name: 'Ada', color: '#ff8800' }), server.url))
    await within(15_000, 'editor 2', grace.evaluate(u => window.concord.openEditor(u, 'shared-editor', { name: 'Grace', color: '#0088ff' }), server.url))

    await ada.locator('.cm-content').click()
    await ada.keyboard.type('Hello from Ada.')
    await waitFor(async () => (await editorText(grace)) === 'Hello from Ada.', { timeoutMs: 15_000, message: 'Ada\'s text in Grace\'s editor' })
    // Grace sees Ada's caret, labelled with the name Ada set through presence
    await grace.locator('.cm-ySelectionCaret .cm-ySelectionInfo', { hasText: 'Ada' }).waitFor({ state: 'attached' })

    await grace.locator('.cm-content').click()
    await grace.keyboard.press('End')
    await grace.keyboard.type(' Grace here.')
    await waitFor(async () => (await editorText(ada)) === 'Hello from Ada. Grace here.', { timeoutMs: 15_000, message: 'Grace\'s text in Ada\'s editor' })
    await ada.locator('.cm-ySelectionCaret .cm-ySelectionInfo', { hasText: 'Grace' }).waitFor({ state: 'attached' })

    // Ada undoes: her sentence goes, Grace's stays, in both editors and on the server
    await ada.locator('.cm-content').click()
    await ada.keyboard.press('Control+z')
    for (const page of [ada, grace]) {
      let shown = ''
      await waitFor(async () => (shown = await editorText(page)) === ' Grace here.',
        { timeoutMs: 15_000, message: () => `the editor to show only " Grace here." (shows "${shown}")` })
    }
    await waitFor(async () => textOf(await server.server.storage.load('shared-editor'), 'codemirror') === ' Grace here.',
      { timeoutMs: 15_000, message: 'the server to store the undo' })
    expect(pageErrors).toEqual([])
  })
})
