import { h, icon, ICONS } from './dom.js'
import { avatar } from './presence-bar.js'
import { colorFor, mintToken, type DemoRole, type DemoUser, type MintedToken } from './session.js'

/**
 * Demo sign-in: a name and a role. The server (started with `--demo`) mints a development token
 * for them; a real deployment gets tokens from its own backend instead.
 */
export function renderSignIn(root: HTMLElement, onSignedIn: (user: DemoUser, token: MintedToken) => void): void {
  const name = h('input', {
    id: 'sign-in-name', class: 'input', type: 'text', name: 'name', required: true, maxlength: 40, autocomplete: 'nickname',
    placeholder: 'e.g. Ada',
  })
  const preview = h('div', { class: 'sign-in-avatar', 'aria-hidden': 'true' })
  const updatePreview = (): void => {
    const n = name.value.trim()
    preview.replaceChildren(avatar(n || '?', n ? colorFor(n) : '#a8a29e'))
  }
  name.addEventListener('input', updatePreview)
  updatePreview()

  const role = (value: DemoRole, title: string, detail: string, checked: boolean): HTMLElement =>
    h('label', { class: 'role-option' },
      h('input', { type: 'radio', name: 'role', value, checked }),
      h('span', { class: 'role-text' }, h('strong', null, title), h('span', { class: 'muted small' }, detail)))
  const error = h('p', { class: 'error-text', role: 'alert' })
  const submit = h('button', { type: 'submit', class: 'button primary wide' }, 'Join')
  const form = h('form', { class: 'sign-in-form', 'aria-labelledby': 'sign-in-title' },
    h('div', { class: 'brand brand-large' }, brandMark(), h('span', null, 'Concord')),
    h('h1', { id: 'sign-in-title' }, 'Join the demo'),
    h('p', { class: 'muted' }, 'Write together in real time: a shared editor and a task board. Open a second window with another name to see it live.'),
    h('label', { for: name.id }, 'Your name'),
    h('div', { class: 'name-row' }, preview, name),
    h('fieldset', { class: 'roles' },
      h('legend', null, 'You join as'),
      role('write', 'Editor', 'Can write and change everything', true),
      role('read', 'Viewer', 'Read only: follows along live', false)),
    error,
    submit,
    h('p', { class: 'muted small center' }, icon(ICONS.eye), ' Development sign-in: anyone can pick any name. Never run a server with --demo in production.'))

  form.addEventListener('submit', e => {
    e.preventDefault()
    const n = name.value.trim()
    if (n === '') {
      error.textContent = 'Please enter a name.'
      name.focus()
      return
    }
    const r = (form.querySelector<HTMLInputElement>('input[name=role]:checked')?.value ?? 'write') as DemoRole
    const user: DemoUser = { name: n, role: r, color: colorFor(n) }
    submit.disabled = true
    submit.textContent = 'Joining…'
    error.textContent = ''
    mintToken(user).then(token => onSignedIn(user, token), (err: Error) => {
      error.textContent = err.message
      submit.disabled = false
      submit.textContent = 'Join'
    })
  })

  root.replaceChildren(h('main', { class: 'sign-in' }, form))
  document.title = 'Sign in · Concord'
  name.focus()
}

export function brandMark(): SVGSVGElement {
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg')
  svg.setAttribute('viewBox', '0 0 64 64')
  svg.setAttribute('width', '28')
  svg.setAttribute('height', '28')
  svg.setAttribute('aria-hidden', 'true')
  svg.innerHTML = '<rect width="64" height="64" rx="14" fill="var(--accent)"/><circle cx="26" cy="32" r="13" fill="none" stroke="#fff" stroke-width="6"/><circle cx="38" cy="32" r="13" fill="none" stroke="#c7d2fe" stroke-width="6"/>'
  return svg
}
