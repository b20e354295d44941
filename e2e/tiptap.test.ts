import { describe, it, expect, beforeAll, afterAll, afterEach } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium, type BrowserContext, type Page } from 'playwright-core'
import * as Y from 'yjs'
import { mintToken } from '@concord/server'
import { startServer, waitFor, type RunningServer } from './helpers.js'
// the page's `window.tiptap` (its type, and the global declaration of it)
import type { PageState, User } from './fixtures/tiptap/main.js'
import { CHROMIUM, CHROMIUM_ARGS, requireChromium, within } from './chromium.js'
import { buildFixtureSite, type FixtureSite } from './fixture-site.js'

// TipTap v3 on a stock @hocuspocus/provider in one Chromium page, TipTap on @concord/client in
// another, one Concord server between them: what a team moving from Hocuspocus runs while half its
// pages are still on the old provider. Debian's Chromium, driven by playwright-core, as in
// e2e/browser-client.test.ts.

const FIXTURE = fileURLToPath(new URL('./fixtures/tiptap/', import.meta.url))
const SECRET = 'e2e-secret-0123456789-abcdefghijklmnopqrstuvwxyz'
/** Generous: a loaded 2-core machine runs two pages, a server and Vitest's other workers. */
const WAIT_MS = 30_000
/** The Y.XmlFragment both pages' Collaboration extension edits (the fixture's FIELD). */
const FIELD = 'content'

const ADA: User = { name: 'Ada', color: '#ff8800' }
const GRACE: User = { name: 'Grace', color: '#0088ff' }
const RITA: User = { name: 'Rita', color: '#22aa44' }

/** The test page (built once) and the static server that serves it. */
let site: FixtureSite | null = null
/** Per test: what to close afterwards. */
const contexts = new Set<BrowserContext>()
const running: RunningServer[] = []
const dirs: string[] = []
/** Console errors and uncaught exceptions of every page. */
let pageErrors: string[] = []

beforeAll(async () => {
  requireChromium()
  site = await buildFixtureSite(FIXTURE)
})

afterAll(async () => {
  await site?.close()
  site = null
})

afterEach(async () => {
  for (const context of [...contexts]) await closeContext(context)
  for (const r of running.splice(0)) await r.close()
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
  pageErrors = []
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
  page.setDefaultTimeout(WAIT_MS)
  page.on('console', message => {
    if (message.type() === 'error') pageErrors.push(`console error: ${message.text()}`)
  })
  page.on('pageerror', error => pageErrors.push(`uncaught: ${error.stack ?? error.message}`))
  return page
}

async function launch(): Promise<BrowserContext> {
  const context = await chromium.launchPersistentContext(tempDir('concord-chromium-'), {
    executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: WAIT_MS,
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

/** A page of `context` showing the test site, with `window.tiptap` ready. */
async function openPage(context: BrowserContext, page?: Page): Promise<Page> {
  const p = watch(page ?? context.pages()[0] ?? await context.newPage())
  await p.goto(`${site!.origin}/index.html`)
  await p.waitForFunction(() => typeof window.tiptap === 'object')
  return p
}

/** What an editor shows: each block's text (without the remote carets' name labels), and the bold runs. */
function shown(page: Page): Promise<{ blocks: string[]; bold: string[] }> {
  return page.locator('.ProseMirror').evaluate(el => {
    const copy = el.cloneNode(true) as HTMLElement
    copy.querySelectorAll('.collaboration-carets__caret').forEach(caret => caret.remove())
    return {
      blocks: Array.from(copy.children, block => block.textContent ?? ''),
      bold: Array.from(copy.querySelectorAll('strong'), b => b.textContent ?? ''),
    }
  })
}

/** Wait until `page`'s editor shows `blocks` (and, when given, exactly the bold runs `bold`). */
async function waitForShown(page: Page, who: string, blocks: string[], bold?: string[]): Promise<void> {
  let last: unknown = null
  await waitFor(async () => {
    const now = await shown(page)
    last = now
    return JSON.stringify(now.blocks) === JSON.stringify(blocks) && (bold === undefined || JSON.stringify(now.bold) === JSON.stringify(bold))
  }, { timeoutMs: WAIT_MS, intervalMs: 50, message: () => `${who}'s editor to show ${JSON.stringify({ blocks, bold })} (shows ${JSON.stringify(last)})` })
}

const state = (page: Page): Promise<PageState> => page.evaluate(() => window.tiptap.state())

/**
 * Click into the editor, put the caret at the very end with Ctrl+End, and type like a user. ProseMirror
 * reads a caret the browser moved (a click, Ctrl+End) from a later `selectionchange` event, and
 * Playwright's keys come faster than that: wait until the editor's own selection is at the end (where a
 * person's first key would find it) before typing.
 */
async function typeAtEnd(page: Page, keys: (string | { press: string })[]): Promise<void> {
  await page.locator('.ProseMirror').click()
  await page.keyboard.press('Control+End')
  let caret: { from: number; to: number; end: number } | null = null
  await waitFor(async () => {
    caret = await page.evaluate(() => window.tiptap.caret())
    return caret.from === caret.end && caret.to === caret.end
  }, { timeoutMs: WAIT_MS, intervalMs: 20, message: () => `the editor's caret at the end of the document after Ctrl+End (${JSON.stringify(caret)})` })
  for (const k of keys) {
    if (typeof k === 'string') await page.keyboard.type(k)
    else await page.keyboard.press(k.press)
  }
}

/** The fragment as the server's live document holds it. */
function serverXml(server: RunningServer, doc: string): string | null {
  return server.server.registry.peek(doc)?.ydoc.getXmlFragment(FIELD).toString() ?? null
}

/** The fragment as a fresh load from the server's storage holds it (what survives a restart). */
async function storedXml(server: RunningServer, doc: string): Promise<string> {
  const loaded = await server.server.storage.load(doc)
  const ydoc = new Y.Doc()
  if (loaded.snapshot !== null) Y.applyUpdate(ydoc, loaded.snapshot)
  for (const u of loaded.updates) Y.applyUpdate(ydoc, u.update)
  return ydoc.getXmlFragment(FIELD).toString()
}

async function tokens(...users: [string, 'read' | 'write'][]): Promise<string[]> {
  return Promise.all(users.map(async ([userId, role]) => (await mintToken({ secret: SECRET, tenant: 'acme', userId, docs: { 'acme/*': role } })).token))
}

describe('TipTap on a stock Hocuspocus provider and TipTap on @concord/client, one Concord server', () => {
  it('typing in either editor shows in the other (paragraphs, bold), with each other\'s named caret, and is durable on the server', async () => {
    const DOC = 'acme/tiptap-shared'
    const server = await startServer({ auth: { secret: SECRET } })
    running.push(server)
    const [adaToken, graceToken] = await tokens(['ada', 'write'], ['grace', 'write'])
    const context = await launch()
    const ada = await openPage(context)
    const grace = await openPage(context, await context.newPage())
    // Ada's page: a stock HocuspocusProvider on ws://host:port with a Concord JWT as its token
    const opened = await within(WAIT_MS, 'the Hocuspocus page to sync',
      ada.evaluate(([u, d, t, user]) => window.tiptap.openHocuspocus(u, d, t, user), [server.url, DOC, adaToken, ADA] as const))
    expect(opened.provider).toMatchObject({ synced: true, isAuthenticated: true, authorizedScope: 'read-write' })
    // Grace's page: Concord's SDK
    await within(WAIT_MS, 'the SDK page to sync',
      grace.evaluate(([u, d, t, user]) => window.tiptap.openConcord(u, d, t, user), [server.url, DOC, graceToken, GRACE] as const))

    // Ada types; Grace sees her text, and her caret labelled "Ada"
    await typeAtEnd(ada, ['Hello from Ada.'])
    await waitForShown(grace, 'Grace', ['Hello from Ada.'])
    await grace.locator('.collaboration-carets__label', { hasText: 'Ada' }).waitFor({ state: 'attached' })

    // Grace starts a new paragraph, with a bold word (Ctrl+B on, off); Ada sees both, and Grace's caret
    await typeAtEnd(grace, [{ press: 'Enter' }, 'Grace adds ', { press: 'Control+b' }, 'bold', { press: 'Control+b' }, ' text.'])
    await waitForShown(ada, 'Ada', ['Hello from Ada.', 'Grace adds bold text.'], ['bold'])
    await ada.locator('.collaboration-carets__label', { hasText: 'Grace' }).waitFor({ state: 'attached' })

    // Ada answers in a third paragraph
    await typeAtEnd(ada, [{ press: 'Enter' }, 'Ada again.'])
    const final = ['Hello from Ada.', 'Grace adds bold text.', 'Ada again.']
    for (const [page, who] of [[ada, 'Ada'], [grace, 'Grace']] as const) await waitForShown(page, who, final, ['bold'])

    // the same document everywhere: both pages' fragments, the server's live copy, and storage
    const xml = '<paragraph>Hello from Ada.</paragraph><paragraph>Grace adds <bold>bold</bold> text.</paragraph><paragraph>Ada again.</paragraph>'
    let held: { grace: string; server: string | null } = { grace: '', server: null }
    await waitFor(async () => {
      held = { grace: (await state(grace)).xml, server: serverXml(server, DOC) }
      return held.grace === xml && held.server === xml
    }, { timeoutMs: WAIT_MS, message: () => `Grace's page and the server to hold ${xml} (hold ${JSON.stringify(held)})` })
    // every change the Hocuspocus provider sent is confirmed durable (Concord's SyncStatus comes with the save)
    const adaState = await waitFor(async () => {
      const s = await state(ada)
      return s.provider?.hasUnsyncedChanges === false ? s : false
    }, { timeoutMs: WAIT_MS, message: 'the Hocuspocus provider to count its unsynced changes down to 0' })
    expect(adaState.xml).toBe(xml)
    expect(adaState.provider?.unsyncedChanges).toBe(0)
    const graceState = await waitFor(async () => {
      const s = await state(grace)
      return s.handle?.saved === true ? s : false
    }, { timeoutMs: WAIT_MS, message: 'the SDK handle to report saved' })
    expect(graceState.handle).toMatchObject({ status: 'synced', pendingCount: 0 })
    expect(await storedXml(server, DOC)).toBe(xml)
    // both carets are still up in the other page
    expect(await grace.locator('.collaboration-carets__label', { hasText: 'Ada' }).count()).toBe(1)
    expect(await ada.locator('.collaboration-carets__label', { hasText: 'Grace' }).count()).toBe(1)

    // Ada closes her tab: her caret leaves Grace's editor, her text stays
    await ada.close()
    await grace.locator('.collaboration-carets__label', { hasText: 'Ada' }).waitFor({ state: 'detached' })
    await waitForShown(grace, 'Grace', final, ['bold'])
    expect(pageErrors).toEqual([])
  })

  it('a read-only token on the Hocuspocus page: scope "readonly", and what its user types anyway reaches neither the other page nor the server', async () => {
    const DOC = 'acme/tiptap-readonly'
    const server = await startServer({ auth: { secret: SECRET } })
    running.push(server)
    const [ritaToken, graceToken] = await tokens(['rita', 'read'], ['grace', 'write'])
    const context = await launch()
    const rita = await openPage(context)
    const grace = await openPage(context, await context.newPage())
    const opened = await within(WAIT_MS, 'the Hocuspocus page to sync',
      rita.evaluate(([u, d, t, user]) => window.tiptap.openHocuspocus(u, d, t, user), [server.url, DOC, ritaToken, RITA] as const))
    expect(opened.provider).toMatchObject({ synced: true, isAuthenticated: true, authorizedScope: 'readonly' })
    await within(WAIT_MS, 'the SDK page to sync',
      grace.evaluate(([u, d, t, user]) => window.tiptap.openConcord(u, d, t, user), [server.url, DOC, graceToken, GRACE] as const))

    // the reader sees the writer's text
    await typeAtEnd(grace, ['Plan by Grace.'])
    await waitForShown(rita, 'Rita', ['Plan by Grace.'])

    // the reader types anyway (the page left the editor editable): her own editor shows it ...
    await typeAtEnd(rita, [' Rita was here.'])
    await waitForShown(rita, 'Rita', ['Plan by Grace. Rita was here.'])
    // ... and a stateless message sent after it on the same socket reaching Grace's page proves the
    // server has handled every keystroke before it (one socket's messages are handled in order)
    await rita.evaluate(() => window.tiptap.sendStateless('rita typed'))
    await waitFor(async () => (await state(grace)).stateless.includes('rita typed'),
      { timeoutMs: WAIT_MS, message: 'the reader\'s stateless message to reach the writer\'s page' })

    // the writer writes later; it reaches the reader's page and the server, the reader's text does not
    await typeAtEnd(grace, [{ press: 'Enter' }, 'Later by Grace.'])
    await waitForShown(rita, 'Rita', ['Plan by Grace. Rita was here.', 'Later by Grace.'])
    const xml = '<paragraph>Plan by Grace.</paragraph><paragraph>Later by Grace.</paragraph>'
    await waitFor(async () => {
      const s = await state(grace)
      return s.handle?.saved === true && s.xml === xml && serverXml(server, DOC) === xml
    }, { timeoutMs: WAIT_MS, message: 'the writer\'s later paragraph saved on the server' })
    await waitForShown(grace, 'Grace', ['Plan by Grace.', 'Later by Grace.'])
    expect(await storedXml(server, DOC)).toBe(xml)
    // the server got the reader's keystrokes and refused them; they stay her own, never confirmed
    const admin = (await mintToken({ secret: SECRET, tenant: 'acme', userId: 'root', admin: true })).token
    const metrics = await (await fetch(`http://127.0.0.1:${server.port}/metrics`, { headers: { authorization: `Bearer ${admin}` } })).text()
    expect(Number(/^concord_refused_total\{code="CONCORD_ERR_AUTH_FORBIDDEN"\} (\d+)$/m.exec(metrics)?.[1] ?? 0)).toBeGreaterThan(0)
    const ritaState = await state(rita)
    expect(ritaState.provider).toMatchObject({ authorizedScope: 'readonly', hasUnsyncedChanges: true })
    expect(ritaState.xml).toBe('<paragraph>Plan by Grace. Rita was here.</paragraph><paragraph>Later by Grace.</paragraph>')
    expect(ritaState.authenticationFailures).toEqual([])
    expect(pageErrors).toEqual([])
  })
})
