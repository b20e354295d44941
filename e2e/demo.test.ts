import { describe, it, expect, beforeAll, afterEach } from 'vitest'
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer as createHttpServer } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium, type Browser, type Page } from 'playwright-core'
import * as Y from 'yjs'
import { FRAME_KINDS } from '@concord/protocol'
import { connectClient, RawNativeSocket, waitFor } from './helpers.js'
import { spawnServer, type ServerProcess } from './server-process.js'
import { CHROMIUM, CHROMIUM_ARGS, requireChromium, within } from './chromium.js'

// The demo app (apps/demo, built by `npm run build`) served by `concord serve --demo`, driven as
// people would use it: in Debian's Chromium through playwright-core, with the mouse and keyboard.
const DIST = fileURLToPath(new URL('../apps/demo/dist/index.html', import.meta.url))
const SCREENSHOTS = fileURLToPath(new URL('../docs/screenshots/', import.meta.url))
const DESKTOP = { width: 1280, height: 800 }
const PHONE = { width: 390, height: 844 }

const browsers: Browser[] = []
const servers: ServerProcess[] = []
const dirs: string[] = []
/** Console errors and uncaught exceptions of every page of the current test. */
let pageErrors: string[] = []

beforeAll(() => {
  requireChromium()
  if (!existsSync(DIST)) throw new Error(`${DIST} is missing: build the demo app first (npm run build)`)
  mkdirSync(SCREENSHOTS, { recursive: true })
})

afterEach(async () => {
  for (const b of browsers.splice(0)) await within(20_000, 'closing Chromium', b.close())
  for (const s of servers.splice(0)) {
    if (s.child.exitCode !== null || s.child.signalCode !== null) continue
    s.child.kill('SIGTERM')
    const exited = await Promise.race([s.exited.then(() => true), new Promise<boolean>(r => setTimeout(() => r(false), 5_000))])
    if (!exited) s.child.kill('SIGKILL')
  }
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
  pageErrors = []
})

/** `concord serve --demo` on a free port with a fresh data folder. */
async function startDemoServer(): Promise<{ base: string; ws: string }> {
  const data = mkdtempSync(join(tmpdir(), 'concord-demo-'))
  dirs.push(data)
  // --demo implies --auth dev; spelled out because the helper would add --auth none otherwise
  const server = await spawnServer(['--demo', '--auth', 'dev', '--data', data, '--port', '0'])
  servers.push(server)
  return { base: `http://127.0.0.1:${server.port}/`, ws: server.url }
}

async function launch(): Promise<Browser> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 30_000 })
  browsers.push(browser)
  return browser
}

/** A new browser context (its own storage: another person) signed in to the demo at `url`. */
async function signIn(browser: Browser, url: string, name: string, role: 'write' | 'read' = 'write', viewport = DESKTOP): Promise<Page> {
  const context = await browser.newContext({ viewport })
  // the app is served with a Content-Security-Policy: anything of its own it refused (a script, a
  // style, the WebSocket) is a console error, and reported here as an event too
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', e => console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`))
  })
  const page = await context.newPage()
  page.setDefaultTimeout(10_000)
  page.on('console', m => { if (m.type() === 'error') pageErrors.push(`${name}: console error: ${m.text()}`) })
  page.on('pageerror', e => pageErrors.push(`${name}: uncaught: ${e.stack ?? e.message}`))
  await page.goto(url)
  await page.getByLabel('Your name').fill(name)
  await page.getByRole('radio', { name: role === 'read' ? /Viewer/ : /Editor/ }).check()
  await page.getByRole('button', { name: 'Join' }).click()
  await page.locator('.home, .doc-frame').first().waitFor()
  return page
}

/** From the home page: a new document or board, named `title`; returns its URL. */
async function create(page: Page, kind: 'document' | 'board', title: string): Promise<string> {
  await page.locator('.home-actions').getByRole('button', { name: kind === 'document' ? 'New document' : 'New board' }).click()
  const input = page.getByLabel(kind === 'document' ? 'Document title' : 'Board title')
  await expect.poll(() => input.evaluate(el => el === document.activeElement), { timeout: 10_000 }).toBe(true)
  await page.keyboard.type(title)
  await page.keyboard.press('Enter')
  await page.locator('.nav-item', { hasText: title }).waitFor()
  return page.url()
}

/** The text an editor shows, without the other people's caret labels. */
function editorText(page: Page): Promise<string> {
  return page.getByTestId('editor').evaluate(el => {
    const copy = el.cloneNode(true) as HTMLElement
    copy.querySelectorAll('.collaboration-carets__caret').forEach(c => c.remove())
    return copy.textContent ?? ''
  })
}

async function sameText(pages: Page[], what: string): Promise<string> {
  let texts: string[] = []
  await waitFor(async () => {
    texts = await Promise.all(pages.map(editorText))
    return texts.every(t => t === texts[0])
  }, { timeoutMs: 10_000, message: () => `${what}: ${JSON.stringify(texts)}` })
  return texts[0]!
}

function saveStatus(page: Page): Promise<string | null> {
  return page.getByTestId('save-status').getAttribute('data-status')
}

async function expectStatus(page: Page, status: string, timeoutMs: number): Promise<void> {
  let last: string | null = null
  await waitFor(async () => (last = await saveStatus(page)) === status,
    { timeoutMs, message: () => `the status to show ${status} (shows ${last})` })
}

/** The columns (ids) a card with this title is shown in, once per copy of it. */
function columnsOf(page: Page, title: string): Promise<string[]> {
  return page.evaluate(t => Array.from(document.querySelectorAll('.board .card'), c => c as HTMLElement)
    .filter(c => c.dataset.title === t)
    .map(c => (c.closest('.column') as HTMLElement).dataset.columnId!), title)
}

describe('the demo app in Chromium', () => {
  it('two people type into the same document at once: both see the same text and the other\'s named caret', async () => {
    const { base } = await startDemoServer()
    const browser = await launch()
    const ada = await signIn(browser, base, 'Ada')
    const url = await create(ada, 'document', 'Launch plan')
    const grace = await signIn(browser, url, 'Grace')
    await ada.getByTestId('editor').click()
    // Markdown shortcuts work: "## " starts a heading
    await ada.keyboard.type('## Launch plan')
    await ada.keyboard.press('Enter')
    await ada.keyboard.type('Goals for the launch')
    await ada.keyboard.press('Enter')
    await waitFor(async () => (await editorText(grace)) === 'Launch planGoals for the launch', { timeoutMs: 10_000, message: 'Ada\'s first lines at Grace\'s' })
    expect(await grace.getByTestId('editor').locator('h2').textContent()).toBe('Launch plan')

    // at the same time: Ada writes the second paragraph, Grace extends the first one
    await grace.getByTestId('editor').locator('p', { hasText: 'Goals for the launch' }).click()
    await grace.keyboard.press('End')
    await Promise.all([
      ada.keyboard.type('Ada ships the editor and the board.', { delay: 15 }),
      grace.keyboard.type(', with Grace on the server side.', { delay: 15 }),
    ])
    const text = await sameText([ada, grace], 'both editors to show the same text')
    expect(text).toBe('Launch planGoals for the launch, with Grace on the server side.Ada ships the editor and the board.')

    // each shows the other's caret with their name
    await ada.locator('.collaboration-carets__label', { hasText: 'Grace' }).waitFor()
    await grace.locator('.collaboration-carets__label', { hasText: 'Ada' }).waitFor()
    // and who is here
    await expect.poll(() => ada.locator('.presence [data-name]').evaluateAll(els => els.map(e => (e as HTMLElement).dataset.name)), { timeout: 10_000 })
      .toEqual(['Ada', 'Grace'])

    // a third person looks on: both carets, named, in one picture (and at phone width)
    await grace.keyboard.press('Shift+Control+ArrowLeft')
    await grace.keyboard.press('Shift+Control+ArrowLeft')
    const katherine = await signIn(browser, url, 'Katherine')
    await katherine.locator('.collaboration-carets__label', { hasText: 'Ada' }).waitFor()
    await katherine.locator('.collaboration-carets__label', { hasText: 'Grace' }).waitFor()
    await katherine.locator('.ProseMirror-yjs-selection').first().waitFor()
    await katherine.screenshot({ path: join(SCREENSHOTS, 'demo-editor.png') })
    await katherine.setViewportSize(PHONE)
    await katherine.locator('.collaboration-carets__label', { hasText: 'Grace' }).waitFor()
    // the document list slides away at phone width
    await expect.poll(async () => { const box = await katherine.locator('#sidebar').boundingBox(); return box === null || box.x + box.width <= 0 }, { timeout: 10_000 }).toBe(true)
    await katherine.screenshot({ path: join(SCREENSHOTS, 'demo-phone.png') })
    expect(pageErrors).toEqual([])
  })

  it('one person goes offline, both keep editing, it comes back: both converge, and it showed offline and then saved', async () => {
    const { base } = await startDemoServer()
    const browser = await launch()
    const ada = await signIn(browser, base, 'Ada')
    const url = await create(ada, 'document', 'Offline notes')
    const grace = await signIn(browser, url, 'Grace')
    await ada.getByTestId('editor').click()
    await ada.keyboard.type('First line.')
    await sameText([ada, grace], 'the first line everywhere')
    await expectStatus(ada, 'saved', 10_000)

    await ada.context().setOffline(true)
    // the SDK reports offline after 3 s without a working connection
    await expectStatus(ada, 'offline', 10_000)
    await ada.keyboard.type(' Written offline.')
    await grace.getByTestId('editor').click()
    await grace.keyboard.press('Control+End')
    await grace.keyboard.press('Enter')
    await grace.keyboard.type('Written online.')
    await expectStatus(grace, 'saved', 10_000)
    expect(await saveStatus(ada)).toBe('offline')
    expect(await ada.getByTestId('save-status').textContent()).toMatch(/^Offline · \d+ unsaved edits?$/)
    expect(await editorText(grace)).not.toContain('Written offline.')

    await ada.context().setOffline(false)
    await expectStatus(ada, 'saved', 15_000)
    const text = await sameText([ada, grace], 'both editors to converge')
    expect(text).toBe('First line. Written offline.Written online.')
    expect(pageErrors).toEqual([])
  })

  it('a read-only user cannot change the document: the editor is not editable and a forced write is refused by the server', async () => {
    const { base, ws } = await startDemoServer()
    const browser = await launch()
    const ada = await signIn(browser, base, 'Ada')
    const url = await create(ada, 'document', 'Handbook')
    await ada.getByTestId('editor').click()
    await ada.keyboard.type('Only editors change this.')
    const viewer = await signIn(browser, url, 'Grace', 'read')
    await sameText([ada, viewer], 'the viewer to see the text')

    // the viewer's editor is read-only, says so, and typing into it changes nothing
    await expect.poll(() => viewer.getByTestId('editor').getAttribute('contenteditable'), { timeout: 10_000 }).toBe('false')
    expect(await viewer.getByTestId('read-only-badge').isVisible()).toBe(true)
    expect(await viewer.getByRole('toolbar', { name: 'Formatting' }).isVisible()).toBe(false)
    expect(await viewer.getByTestId('save-status').textContent()).toBe('Up to date')
    await viewer.getByTestId('editor').click()
    await viewer.keyboard.type('Viewer was here. ')
    await viewer.keyboard.press('Enter')

    // a forced write with the viewer's role (a development token, read, minted like the app does) is refused
    const minted = await fetch(new URL('/dev/token', base), {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: 'Grace', role: 'read' }),
    })
    expect(minted.status).toBe(201)
    const { token: readToken } = await minted.json() as { token: string }
    const document = `dev/doc-${decodeURIComponent(new URL(url).hash.replace('#/doc/', ''))}`
    const raw = await RawNativeSocket.connect(ws)
    try {
      raw.sendFrame({ kind: FRAME_KINDS.OPEN, document, token: readToken, stateVector: new Uint8Array() })
      expect(await raw.next(FRAME_KINDS.OPENED, document)).toMatchObject({ role: 'read' })
      const forged = new Y.Doc()
      forged.getXmlFragment('content').insert(0, [new Y.XmlText('Forced write.')])
      raw.sendFrame({ kind: FRAME_KINDS.UPDATE, document, seq: 1, update: Y.encodeStateAsUpdate(forged) })
      expect(await raw.next(FRAME_KINDS.ERROR, document)).toMatchObject({ code: 'CONCORD_ERR_AUTH_FORBIDDEN', seq: 1, closed: false })
    } finally {
      raw.close()
    }

    // the server's document is unchanged: what a writer's fresh client loads, and what both pages show
    await ada.keyboard.type(' Still only editors.')
    const text = await sameText([ada, viewer], 'the viewer to follow the writer')
    expect(text).toBe('Only editors change this. Still only editors.')
    const writer = await fetch(new URL('/dev/token', base), {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: 'Auditor', role: 'write' }),
    })
    const client = connectClient(ws, { token: (await writer.json() as { token: string }).token })
    try {
      const handle = client.open(document)
      await within(10_000, 'a fresh client to sync', handle.whenSynced())
      const stored = handle.doc.getXmlFragment('content').toJSON()
      expect(stored).toContain('Only editors change this. Still only editors.')
      expect(stored).not.toContain('Viewer was here')
      expect(stored).not.toContain('Forced write')
    } finally {
      client.close()
    }
    expect(pageErrors).toEqual([])
  })

  it('two people move the same card to different columns at the same time: it ends in one column, once', async () => {
    const { base } = await startDemoServer()
    const browser = await launch()
    const ada = await signIn(browser, base, 'Ada')
    const url = await create(ada, 'board', 'Sprint 12')
    await ada.getByLabel('New card in To do').fill('Ship the demo')
    await ada.keyboard.press('Enter')
    const grace = await signIn(browser, url, 'Grace')
    for (const page of [ada, grace]) await waitFor(async () => (await columnsOf(page, 'Ship the demo')).join() === 'todo', { timeoutMs: 10_000, message: 'the card in To do' })

    // both pick the card up and carry it over their column, then both let go at once
    const carry = async (page: Page, column: string): Promise<void> => {
      const card = await page.locator('.card', { hasText: 'Ship the demo' }).boundingBox()
      const target = await page.locator(`.column[data-column-id="${column}"] .card-list`).boundingBox()
      await page.mouse.move(card!.x + card!.width / 2, card!.y + card!.height / 2)
      await page.mouse.down()
      await page.mouse.move(target!.x + target!.width / 2, target!.y + 20, { steps: 10 })
      await page.locator(`.column[data-column-id="${column}"] .card-placeholder`).waitFor()
    }
    await Promise.all([carry(ada, 'doing'), carry(grace, 'done')])
    await Promise.all([ada.mouse.up(), grace.mouse.up()])

    let seen: string[][] = []
    await waitFor(async () => {
      seen = await Promise.all([columnsOf(ada, 'Ship the demo'), columnsOf(grace, 'Ship the demo')])
      return seen.every(c => c.length === 1) && seen[0]![0] === seen[1]![0] && seen[0]![0] !== 'todo'
    }, { timeoutMs: 10_000, message: () => `the card in one column, once, on both pages (${JSON.stringify(seen)})` })
    expect(['doing', 'done']).toContain(seen[0]![0])
    expect(await ada.locator('.card').count()).toBe(1)
    expect(await grace.locator('.card').count()).toBe(1)

    // the picture: the sample board, with Grace working on a card
    await ada.locator('.nav-item', { hasText: 'Launch board' }).click()
    await grace.locator('.nav-item', { hasText: 'Launch board' }).click()
    await ada.locator('.card', { hasText: 'Drag me' }).waitFor()
    await grace.locator('.card', { hasText: 'Drag me' }).getByRole('button').first().click()
    await ada.locator('.card.peer-active', { hasText: 'Drag me' }).waitFor()
    await ada.screenshot({ path: join(SCREENSHOTS, 'demo-board.png') })
    expect(pageErrors).toEqual([])
  })

  it('the app is sent with a strict CSP: markup an attacker got into the page runs no script, and no other site can frame it', async () => {
    const { base } = await startDemoServer()
    for (const path of ['', 'doc/welcome']) {
      const res = await fetch(new URL(path, base))
      expect(res.status).toBe(200)
      const csp = res.headers.get('content-security-policy') ?? ''
      expect(csp).toMatch(/(^|; )script-src 'self'(;|$)/)
      expect(csp).toContain("frame-ancestors 'none'")
      expect(csp).toMatch(/(^|; )connect-src 'self'(;|$)/)
      expect(csp).toMatch(/(^|; )default-src 'none'(;|$)/)
      expect(res.headers.get('x-content-type-options')).toBe('nosniff')
      expect(res.headers.get('referrer-policy')).toBe('no-referrer')
    }
    const browser = await launch()
    const ada = await signIn(browser, base, 'Ada')
    await create(ada, 'document', 'Injected')
    await ada.getByTestId('editor').click()
    await ada.keyboard.type('Still editing.')
    // what an injection would add: an inline script and an inline event handler
    await ada.evaluate(() => {
      const script = document.createElement('script')
      script.textContent = 'window.__injected = "script"'
      document.body.append(script)
      const div = document.createElement('div')
      div.innerHTML = '<img src="data:," onload="window.__injected = \'handler\'" onerror="window.__injected = \'handler\'">'
      document.body.append(div)
    })
    await waitFor(() => pageErrors.filter(e => /CSP violation: script-src/.test(e)).length >= 2,
      { timeoutMs: 10_000, message: () => `the browser to refuse both injected scripts (${JSON.stringify(pageErrors)})` })
    expect(await ada.evaluate(() => (window as unknown as { __injected?: string }).__injected)).toBeUndefined()
    // only the injected scripts were refused: the app's own scripts, styles and socket were not
    expect(pageErrors.filter(e => !/script-src/.test(e))).toEqual([])
    await ada.keyboard.type(' And more.')
    await expectStatus(ada, 'saved', 10_000)

    // framed by another origin (clickjacking): the browser shows its error page instead
    const attacker = createHttpServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' }).end(`<!doctype html><title>attacker</title><iframe src="${base}"></iframe>`)
    })
    await new Promise<void>(resolve => attacker.listen(0, '127.0.0.1', resolve))
    try {
      const framing = await (await browser.newContext()).newPage()
      const refusals: string[] = []
      framing.on('console', m => { if (/frame-ancestors/.test(m.text())) refusals.push(m.text()) })
      await framing.goto(`http://127.0.0.1:${(attacker.address() as { port: number }).port}/`)
      await waitFor(() => refusals.length > 0 && framing.frames().some(f => f.url().startsWith('chrome-error:')),
        { timeoutMs: 10_000, message: () => `the framed app to be refused (frames: ${framing.frames().map(f => f.url()).join(', ')})` })
      expect(framing.frames().map(f => f.url())).not.toContain(base)
    } finally {
      await new Promise<void>(resolve => { attacker.closeAllConnections(); attacker.close(() => resolve()) })
    }
  })

  it('without --demo there is no app and no development sign-in', async () => {
    const data = mkdtempSync(join(tmpdir(), 'concord-demo-'))
    dirs.push(data)
    const server = await spawnServer(['--data', data, '--port', '0'])
    servers.push(server)
    const base = `http://127.0.0.1:${server.port}`
    const token = await fetch(`${base}/dev/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: 'Ada' }) })
    expect(token.status).toBe(404)
    const root = await fetch(`${base}/`)
    expect(root.headers.get('content-type')).toMatch(/^application\/json/)
    expect(await root.json()).toMatchObject({ name: 'concord' })
    for (const path of ['/index.html', '/favicon.svg', '/doc/welcome']) expect((await fetch(`${base}${path}`)).status).toBe(404)
    // development authentication alone does not hand out tokens either: only the demo does
    const devData = mkdtempSync(join(tmpdir(), 'concord-demo-'))
    dirs.push(devData)
    const dev = await spawnServer(['--data', devData, '--port', '0', '--auth', 'dev'])
    servers.push(dev)
    const devToken = await fetch(`http://127.0.0.1:${dev.port}/dev/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: 'Ada' }) })
    expect(devToken.status).toBe(404)
  })
})
