import type { DocHandle } from '@concord/client'
import { h, replaceChildren } from './dom.js'
import { initials, type DemoUser } from './session.js'

/** What the demo puts in its awareness state: who, and whether they are typing. */
export interface PresenceState {
  user?: { name?: string; color?: string; role?: string }
  typing?: boolean
  /** On the board: the card this person is dragging or editing. */
  card?: string | null
}

interface Person {
  clientId: number
  name: string
  color: string
  role: string
  typing: boolean
  self: boolean
}

/** Everyone in the document (this tab first), from the awareness states. */
export function peopleIn(handle: DocHandle): Person[] {
  const people: Person[] = []
  for (const [clientId, raw] of handle.awareness.getStates()) {
    const state = raw as PresenceState
    if (typeof state.user?.name !== 'string') continue
    people.push({
      clientId,
      name: state.user.name,
      color: state.user.color ?? '#57534e',
      role: state.user.role ?? 'write',
      typing: state.typing === true,
      self: clientId === handle.awareness.clientID,
    })
  }
  return people.sort((a, b) => Number(b.self) - Number(a.self) || a.name.localeCompare(b.name) || a.clientId - b.clientId)
}

export function avatar(name: string, color: string, extra: { size?: 'sm' | 'md'; title?: string } = {}): HTMLElement {
  return h('span', { class: `avatar avatar-${extra.size ?? 'md'}`, style: { '--avatar': color }, title: extra.title ?? name, 'aria-hidden': 'true' }, initials(name))
}

const MAX_AVATARS = 5

/**
 * Avatars of who is here (with a typing mark), and a line saying who is typing.
 * Sets this tab's `user` in the awareness (the caret extension reads the same field).
 */
export function createPresence(handle: DocHandle, me: DemoUser): { avatars: HTMLElement; typing: HTMLElement; destroy(): void } {
  handle.awareness.setLocalStateField('user', { name: me.name, color: me.color, role: me.role })
  const avatars = h('div', { class: 'presence', role: 'group', 'aria-label': 'People in this document' })
  const typing = h('div', { class: 'typing-indicator', 'aria-live': 'polite', 'data-testid': 'typing' })

  let shownKey = ''
  const render = (): void => {
    const people = peopleIn(handle)
    // awareness changes with every caret move; redraw only when who is here (or typing) changed
    const key = JSON.stringify(people.map(p => [p.clientId, p.name, p.color, p.role, p.typing]))
    if (key === shownKey) return
    shownKey = key
    const shown = people.slice(0, MAX_AVATARS)
    const list = shown.map(p => {
      const what = `${p.name}${p.self ? ' (you)' : ''}${p.role === 'read' ? ', viewing' : ''}${p.typing ? ', typing' : ''}`
      const el = avatar(p.name, p.color, { title: what })
      el.removeAttribute('aria-hidden')
      el.setAttribute('role', 'img')
      el.setAttribute('aria-label', what)
      if (p.self) el.classList.add('avatar-self')
      if (p.typing) el.classList.add('avatar-typing')
      el.dataset.name = p.name
      return el
    })
    const more = people.length - shown.length
    replaceChildren(avatars, list, more > 0 ? h('span', { class: 'avatar avatar-more', title: people.slice(MAX_AVATARS).map(p => p.name).join(', ') }, `+${more}`) : null)
    const typists = people.filter(p => p.typing && !p.self).map(p => p.name)
    const text = typists.length === 0 ? ''
      : typists.length === 1 ? `${typists[0]} is typing…`
        : typists.length === 2 ? `${typists[0]} and ${typists[1]} are typing…`
          : `${typists.length} people are typing…`
    if (typing.textContent !== text) typing.textContent = text
    typing.classList.toggle('visible', text !== '')
  }

  handle.awareness.on('change', render)
  render()
  return {
    avatars,
    typing,
    destroy() {
      handle.awareness.off('change', render)
    },
  }
}
