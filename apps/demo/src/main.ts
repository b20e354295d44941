import './styles.css'
import type { ConcordClient } from '@concord/client'
import { h, icon, ICONS, newId, replaceChildren, timeAgo } from './dom.js'
import { connect } from './connection.js'
import { DocIndex, INDEX_DOCUMENT, routeOf, type DocEntry, type DocKind } from './doc-index.js'
import type { AppContext } from './doc-frame.js'
import { avatar } from './presence-bar.js'
import { brandMark, renderSignIn } from './sign-in.js'
import { forgetUser, loadUser, saveUser, TokenSource, type DemoUser, type MintedToken } from './session.js'

type Route = { view: 'home' } | { view: DocKind; id: string }

function parseRoute(hash: string): Route {
  const m = /^#\/(doc|board)\/([^/]+)$/.exec(hash)
  if (m === null) return { view: 'home' }
  return { view: m[1] as DocKind, id: decodeURIComponent(m[2]!) }
}

const root = document.getElementById('app')!

function boot(): void {
  const user = loadUser()
  if (user === null) {
    renderSignIn(root, (signedIn, token) => {
      saveUser(signedIn)
      start(signedIn, token)
    })
    return
  }
  start(user, null)
}

function start(user: DemoUser, token: MintedToken | null): void {
  const tokens = new TokenSource(user, token)
  const client = connect(user, tokens)
  const indexHandle = client.open(INDEX_DOCUMENT)
  const index = new DocIndex(indexHandle)
  const ctx: AppContext = { client, user, tokens, index, focusTitleOf: null }
  void indexHandle.whenSynced().then(() => {
    if ((indexHandle.role ?? user.role) !== 'read') index.seed()
  })

  const main = h('main', { id: 'main', class: 'main', tabindex: -1 })
  const sidebar = createSidebar(ctx)
  const navToggle = h('button', { type: 'button', class: 'icon-button nav-toggle', 'aria-label': 'Documents', 'aria-expanded': 'false', 'aria-controls': 'sidebar' }, icon(ICONS.menu))
  const shell = h('div', { class: 'app' },
    h('a', { class: 'skip-link', href: '#main', onclick: (e: Event) => { e.preventDefault(); main.focus() } }, 'Skip to content'),
    h('header', { class: 'topbar' },
      navToggle,
      h('a', { class: 'brand', href: '#/' }, brandMark(), h('span', null, 'Concord')),
      h('span', { class: 'topbar-spacer' }),
      connectionBadge(client),
      userMenu(user, client)),
    h('div', { class: 'layout' }, sidebar.element, main))
  root.replaceChildren(shell)

  const setNavOpen = (open: boolean): void => {
    shell.classList.toggle('nav-open', open)
    navToggle.setAttribute('aria-expanded', String(open))
    if (open) sidebar.element.querySelector<HTMLElement>('a, button')?.focus()
  }
  navToggle.addEventListener('click', () => setNavOpen(!shell.classList.contains('nav-open')))
  // a tap beside the open document list closes it
  shell.querySelector('.layout')!.addEventListener('click', e => {
    if (shell.classList.contains('nav-open') && !sidebar.element.contains(e.target as Node)) setNavOpen(false)
  })
  sidebar.element.addEventListener('keydown', e => {
    if (e.key === 'Escape' && shell.classList.contains('nav-open')) {
      setNavOpen(false)
      navToggle.focus()
    }
  })

  let current: { destroy(): void } | null = null
  let currentKey = ''
  const route = (): void => {
    const r = parseRoute(location.hash)
    const key = r.view === 'home' ? 'home' : `${r.view}/${r.id}`
    setNavOpen(false)
    sidebar.setCurrent(r.view === 'home' ? null : r.id)
    if (key === currentKey) return
    currentKey = key
    current?.destroy()
    current = null
    main.replaceChildren()
    shell.dataset.view = r.view
    if (r.view === 'home') {
      current = mountHome(main, ctx)
      return
    }
    // the editor (TipTap) and the board load on first use
    main.replaceChildren(h('p', { class: 'loading muted' }, 'Loading…'))
    const view = r.view === 'doc' ? import('./doc-view.js').then(m => m.mountDocView) : import('./board-view.js').then(m => m.mountBoardView)
    view.then(mount => {
      if (currentKey !== key) return
      main.replaceChildren()
      current = mount(main, ctx, r.id)
    }, (err: Error) => {
      main.replaceChildren(h('p', { class: 'loading error-text' }, `This page could not be loaded (${err.message}). Reload to try again.`))
    })
  }
  window.addEventListener('hashchange', route)
  route()
}

function createSidebar(ctx: AppContext): { element: HTMLElement; setCurrent(id: string | null): void } {
  const list = h('ul', { class: 'nav-list' })
  const writer = ctx.user.role === 'write'
  const element = h('nav', { id: 'sidebar', class: 'sidebar', 'aria-label': 'Documents' },
    h('div', { class: 'sidebar-header' },
      h('h2', null, 'Documents'),
      writer ? h('div', { class: 'sidebar-actions' },
        h('button', { type: 'button', class: 'icon-button', 'aria-label': 'New document', title: 'New document', onclick: () => createEntry(ctx, 'doc') }, icon(ICONS.doc)),
        h('button', { type: 'button', class: 'icon-button', 'aria-label': 'New board', title: 'New board', onclick: () => createEntry(ctx, 'board') }, icon(ICONS.board))) : null),
    list)
  let currentId: string | null = null
  const render = (): void => {
    const entries = ctx.index.entries()
    replaceChildren(list, entries.length === 0
      ? h('li', { class: 'muted small nav-empty' }, ctx.index.handle.synced ? 'No documents yet.' : 'Loading…')
      : entries.map(e => h('li', null,
        h('a', { href: routeOf(e), class: 'nav-item', 'aria-current': e.id === currentId ? 'page' : null },
          h('span', { class: `nav-icon kind-${e.kind}` }, icon(e.kind === 'doc' ? ICONS.doc : ICONS.board)),
          h('span', { class: 'nav-title' }, e.title)))))
  }
  ctx.index.onChange(render)
  ctx.index.handle.on('synced', render)
  render()
  return {
    element,
    setCurrent(id) {
      currentId = id
      render()
    },
  }
}

function createEntry(ctx: AppContext, kind: DocKind): void {
  const id = newId()
  ctx.index.create(kind, id, kind === 'doc' ? 'Untitled document' : 'Untitled board', ctx.user.name)
  // a new document opens with its title selected, ready to be named
  ctx.focusTitleOf = id
  location.hash = routeOf({ kind, id })
}

function mountHome(main: HTMLElement, ctx: AppContext): { destroy(): void } {
  document.title = 'Documents · Concord'
  const writer = ctx.user.role === 'write'
  const grid = h('ul', { class: 'doc-grid' })
  const render = (): void => {
    const entries = ctx.index.entries()
    replaceChildren(grid, entries.length === 0
      ? h('li', { class: 'empty-state' }, ctx.index.handle.synced
        ? (writer ? 'No documents yet: create the first one.' : 'No documents yet. An editor can create them.')
        : 'Loading documents…')
      : entries.map(entryCard))
  }
  const off = ctx.index.onChange(render)
  const offSynced = ctx.index.handle.on('synced', render)
  render()
  main.append(h('section', { class: 'home' },
    h('div', { class: 'home-header' },
      h('div', null,
        h('h1', null, `Hello, ${ctx.user.name}`),
        h('p', { class: 'muted' }, writer
          ? 'Everything here is live: open any document in two windows and edit in both.'
          : 'You are a viewer: you see every change live, and nothing you do changes a document.')),
      writer ? h('div', { class: 'home-actions' },
        h('button', { type: 'button', class: 'button primary', onclick: () => createEntry(ctx, 'doc') }, icon(ICONS.doc), 'New document'),
        h('button', { type: 'button', class: 'button', onclick: () => createEntry(ctx, 'board') }, icon(ICONS.board), 'New board')) : null),
    grid))
  return {
    destroy() {
      off()
      offSynced()
    },
  }
}

function entryCard(e: DocEntry): HTMLElement {
  return h('li', null,
    h('a', { class: 'doc-card', href: routeOf(e) },
      h('span', { class: `doc-card-icon kind-${e.kind}` }, icon(e.kind === 'doc' ? ICONS.doc : ICONS.board)),
      h('span', { class: 'doc-card-title' }, e.title),
      h('span', { class: 'doc-card-meta muted small' },
        e.kind === 'doc' ? 'Document' : 'Board',
        ' · ',
        e.createdAt === 0 ? 'Sample' : `${e.createdBy} · ${timeAgo(e.createdAt)}`)))
}

/** The connection as a whole (the documents' own status pills say more). */
function connectionBadge(client: ConcordClient): HTMLElement {
  const el = h('span', { class: 'connection', 'aria-hidden': 'true' })
  const update = (): void => {
    const state = client.offline ? 'offline' : client.status === 'connected' ? 'online' : 'connecting'
    el.dataset.state = state
    el.title = state === 'online' ? 'Connected' : state === 'offline' ? 'Offline: changes are kept and sent later' : 'Connecting…'
  }
  client.on('status', update)
  client.on('offline', update)
  client.on('online', update)
  update()
  return el
}

function userMenu(user: DemoUser, client: ConcordClient): HTMLElement {
  return h('div', { class: 'user-menu' },
    avatar(user.name, user.color),
    h('span', { class: 'user-text' },
      h('span', { class: 'user-name' }, user.name),
      h('span', { class: 'user-role muted small' }, user.role === 'read' ? 'Viewer' : 'Editor')),
    h('button', {
      type: 'button', class: 'icon-button', 'aria-label': `Sign out (${user.name})`, title: 'Sign out',
      onclick: () => {
        client.close()
        forgetUser()
        location.hash = ''
        location.reload()
      },
    }, icon(ICONS.logout)))
}

boot()
