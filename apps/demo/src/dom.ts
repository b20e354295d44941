/** Small DOM helpers: the demo has no framework. */

export type Child = Node | string | number | null | undefined | false
type Handler = (event: any) => void
export type Props = Record<string, string | number | boolean | null | undefined | Handler | Record<string, string>>

/** Properties set as DOM properties rather than attributes. */
const PROPERTIES = new Set(['value', 'checked', 'disabled', 'hidden', 'selected', 'tabIndex', 'open'])

/**
 * `h('button', { class: 'primary', onclick: save, 'aria-label': 'Save' }, 'Save')`.
 * `on<event>` props add listeners, `style` takes an object, `false`/`null`/`undefined` skip a prop.
 */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, props: Props | null = null, ...children: (Child | Child[])[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag)
  if (props !== null) {
    for (const [key, value] of Object.entries(props)) {
      if (value === undefined || value === null || value === false) continue
      if (typeof value === 'function') {
        el.addEventListener(key.slice(2).toLowerCase(), value)
      } else if (key === 'style' && typeof value === 'object') {
        for (const [prop, v] of Object.entries(value)) el.style.setProperty(prop, v)
      } else if (key === 'class') {
        el.className = String(value)
      } else if (PROPERTIES.has(key)) {
        (el as unknown as Record<string, unknown>)[key] = value
      } else {
        el.setAttribute(key, value === true ? '' : String(value))
      }
    }
  }
  append(el, children)
  return el
}

export function append(parent: Node, children: (Child | Child[])[]): void {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue
    parent.appendChild(typeof child === 'string' || typeof child === 'number' ? document.createTextNode(String(child)) : child)
  }
}

/** Replace all children of `el`. */
export function replaceChildren(el: Element, ...children: (Child | Child[])[]): void {
  el.replaceChildren()
  append(el, children)
}

/** A small inline SVG icon from a path list (24×24 viewBox, stroked). */
export function icon(paths: string, label?: string): SVGSVGElement {
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg')
  svg.setAttribute('viewBox', '0 0 24 24')
  svg.setAttribute('width', '18')
  svg.setAttribute('height', '18')
  svg.setAttribute('fill', 'none')
  svg.setAttribute('stroke', 'currentColor')
  svg.setAttribute('stroke-width', '2')
  svg.setAttribute('stroke-linecap', 'round')
  svg.setAttribute('stroke-linejoin', 'round')
  svg.classList.add('icon')
  if (label === undefined) svg.setAttribute('aria-hidden', 'true')
  else {
    svg.setAttribute('role', 'img')
    svg.setAttribute('aria-label', label)
  }
  for (const d of paths.split('|')) {
    const path = document.createElementNS('http://www.w3.org/2000/svg', 'path')
    path.setAttribute('d', d)
    svg.appendChild(path)
  }
  return svg
}

/** Icon paths (Lucide-style strokes, drawn for this app). */
export const ICONS = {
  doc: 'M14 3H7a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h10a2 2 0 0 0 2-2V8z|M14 3v5h5|M9 13h6|M9 17h6',
  board: 'M4 4h5v16H4z|M10 4h5v10h-5z|M16 4h4v7h-4z',
  plus: 'M12 5v14|M5 12h14',
  history: 'M3 12a9 9 0 1 0 3-6.7L3 8|M3 3v5h5|M12 7v5l3 2',
  close: 'M6 6l12 12|M18 6L6 18',
  back: 'M15 18l-6-6 6-6',
  menu: 'M4 6h16|M4 12h16|M4 18h16',
  undo: 'M9 14L4 9l5-5|M4 9h10a6 6 0 0 1 0 12h-3',
  redo: 'M15 14l5-5-5-5|M20 9H10a6 6 0 0 0 0 12h3',
  bold: 'M7 4h7a4 4 0 0 1 0 8H7z|M7 12h8a4 4 0 0 1 0 8H7z',
  italic: 'M19 4h-9|M14 20H5|M15 4L9 20',
  strike: 'M16 6a4 4 0 0 0-4-2c-2.5 0-4 1.3-4 3.2 0 1.4.8 2.3 2.3 2.8|M4 12h16|M8 18a4 4 0 0 0 4 2c2.5 0 4-1.3 4-3.2 0-.6-.1-1.1-.4-1.6',
  code: 'M16 18l6-6-6-6|M8 6l-6 6 6 6',
  list: 'M9 6h11|M9 12h11|M9 18h11|M4 6h.01|M4 12h.01|M4 18h.01',
  ordered: 'M10 6h10|M10 12h10|M10 18h10|M4 4v4|M3 18h3l-3 3h3',
  quote: 'M6 17h3l2-4V7H5v6h3z|M14 17h3l2-4V7h-6v6h3z',
  codeBlock: 'M4 4h16v16H4z|M10 9l-3 3 3 3|M14 9l3 3-3 3',
  grip: 'M9 6h.01|M15 6h.01|M9 12h.01|M15 12h.01|M9 18h.01|M15 18h.01',
  left: 'M15 18l-6-6 6-6',
  right: 'M9 18l6-6-6-6',
  calendar: 'M4 6h16v14H4z|M4 10h16|M8 3v4|M16 3v4',
  trash: 'M4 7h16|M10 11v6|M14 11v6|M6 7l1 13h10l1-13|M9 7V4h6v3',
  eye: 'M2 12s4-7 10-7 10 7 10 7-4 7-10 7S2 12 2 12z|M12 9a3 3 0 1 0 0 6 3 3 0 0 0 0-6z',
  save: 'M5 3h11l3 3v15H5z|M8 3v5h7|M8 21v-7h8v7',
  logout: 'M9 21H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2h4|M16 17l5-5-5-5|M21 12H9',
} as const

/** "3 min ago", "yesterday", or a date. */
export function timeAgo(ms: number, now = Date.now()): string {
  const s = Math.round((now - ms) / 1000)
  if (s < 45) return 'just now'
  const m = Math.round(s / 60)
  if (m < 60) return `${m} min ago`
  const hrs = Math.round(m / 60)
  if (hrs < 24) return `${hrs} h ago`
  const days = Math.round(hrs / 24)
  if (days === 1) return 'yesterday'
  if (days < 7) return `${days} days ago`
  return new Date(ms).toLocaleDateString(undefined, { day: 'numeric', month: 'short', year: 'numeric' })
}

export function formatDateTime(ms: number): string {
  return new Date(ms).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' })
}

/** A short random id for documents and cards. */
export function newId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(9))
  return Array.from(bytes, b => 'abcdefghijklmnopqrstuvwxyz0123456789'[b % 36]).join('')
}

let toastRegion: HTMLElement | null = null

/** A short message at the bottom of the screen (announced to screen readers). */
export function toast(message: string, kind: 'info' | 'error' = 'info'): void {
  if (toastRegion === null) {
    toastRegion = h('div', { class: 'toasts', role: 'status', 'aria-live': 'polite' })
    document.body.appendChild(toastRegion)
  }
  const item = h('div', { class: `toast toast-${kind}` }, message)
  toastRegion.appendChild(item)
  setTimeout(() => {
    item.classList.add('leaving')
    setTimeout(() => item.remove(), 300)
  }, kind === 'error' ? 6000 : 3500)
}

/** Ask for confirmation in an accessible modal dialog; resolves true on confirm. */
export function confirmDialog(options: { title: string; message: string; confirm: string; danger?: boolean }): Promise<boolean> {
  return new Promise(resolve => {
    const dialog = h('dialog', { class: 'dialog', 'aria-labelledby': 'confirm-title' })
    const done = (value: boolean): void => {
      dialog.close()
      dialog.remove()
      resolve(value)
    }
    append(dialog, [
      h('h2', { id: 'confirm-title' }, options.title),
      h('p', null, options.message),
      h('div', { class: 'dialog-actions' },
        h('button', { type: 'button', class: 'button', onclick: () => done(false) }, 'Cancel'),
        h('button', { type: 'button', class: options.danger === true ? 'button danger' : 'button primary', onclick: () => done(true) }, options.confirm)),
    ])
    dialog.addEventListener('cancel', e => {
      e.preventDefault()
      done(false)
    })
    document.body.appendChild(dialog)
    dialog.showModal()
  })
}
