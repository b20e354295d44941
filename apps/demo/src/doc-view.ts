import * as Y from 'yjs'
import { Editor, type JSONContent } from '@tiptap/core'
import { DOMSerializer, type Schema } from '@tiptap/pm/model'
import StarterKit from '@tiptap/starter-kit'
import { Placeholder } from '@tiptap/extensions'
import { Collaboration, isChangeOrigin } from '@tiptap/extension-collaboration'
import { CollaborationCaret } from '@tiptap/extension-collaboration-caret'
import { prosemirrorJSONToYXmlFragment, yXmlFragmentToProseMirrorRootNode } from '@tiptap/y-tiptap'
import { Presence } from '@concord/client'
import { h, icon, ICONS } from './dom.js'
import { createDocFrame, type AppContext } from './doc-frame.js'
import { documentName, SAMPLES } from './doc-index.js'
import { applySeed, SEED_CLIENTS } from './seed.js'

/** The Y.XmlFragment that holds the rich text (`?field=content` in the history API). */
export const RICH_TEXT_FIELD = 'content'

interface ToolbarButton {
  label: string
  shortcut?: string
  icon: string
  run(editor: Editor): void
  active?(editor: Editor): boolean
  enabled?(editor: Editor): boolean
}

const TOOLBAR: (ToolbarButton | 'separator')[] = [
  { label: 'Undo', shortcut: 'Ctrl+Z', icon: ICONS.undo, run: e => e.commands.undo(), enabled: e => e.can().undo() },
  { label: 'Redo', shortcut: 'Ctrl+Shift+Z', icon: ICONS.redo, run: e => e.commands.redo(), enabled: e => e.can().redo() },
  'separator',
  { label: 'Heading 1', icon: 'M4 6v12|M12 6v12|M4 12h8|M17 10l2-2v10', run: e => e.chain().focus().toggleHeading({ level: 1 }).run(), active: e => e.isActive('heading', { level: 1 }) },
  { label: 'Heading 2', icon: 'M4 6v12|M12 6v12|M4 12h8|M16 10a2 2 0 1 1 4 0c0 2-4 4-4 8h4', run: e => e.chain().focus().toggleHeading({ level: 2 }).run(), active: e => e.isActive('heading', { level: 2 }) },
  'separator',
  { label: 'Bold', shortcut: 'Ctrl+B', icon: ICONS.bold, run: e => e.chain().focus().toggleBold().run(), active: e => e.isActive('bold') },
  { label: 'Italic', shortcut: 'Ctrl+I', icon: ICONS.italic, run: e => e.chain().focus().toggleItalic().run(), active: e => e.isActive('italic') },
  { label: 'Strikethrough', shortcut: 'Ctrl+Shift+S', icon: ICONS.strike, run: e => e.chain().focus().toggleStrike().run(), active: e => e.isActive('strike') },
  { label: 'Inline code', shortcut: 'Ctrl+E', icon: ICONS.code, run: e => e.chain().focus().toggleCode().run(), active: e => e.isActive('code') },
  'separator',
  { label: 'Bulleted list', icon: ICONS.list, run: e => e.chain().focus().toggleBulletList().run(), active: e => e.isActive('bulletList') },
  { label: 'Numbered list', icon: ICONS.ordered, run: e => e.chain().focus().toggleOrderedList().run(), active: e => e.isActive('orderedList') },
  { label: 'Quote', icon: ICONS.quote, run: e => e.chain().focus().toggleBlockquote().run(), active: e => e.isActive('blockquote') },
  { label: 'Code block', icon: ICONS.codeBlock, run: e => e.chain().focus().toggleCodeBlock().run(), active: e => e.isActive('codeBlock') },
]

/**
 * The rich-text editor: TipTap on the handle's Y.Doc (Collaboration, whose undo reverts only
 * this person's edits) with everyone's named carets and selections (CollaborationCaret on the
 * handle's awareness), a formatting toolbar, and who is typing.
 */
export function mountDocView(container: HTMLElement, ctx: AppContext, id: string): { destroy(): void } {
  const handle = ctx.client.open(documentName('doc', id))
  let destroyed = false
  let schema: Schema | null = null
  const frame = createDocFrame(ctx, handle, 'doc', id, update => renderPreview(update, schema!))

  const buttons = TOOLBAR.map(b => b === 'separator'
    ? h('span', { class: 'toolbar-separator', role: 'separator', 'aria-orientation': 'vertical' })
    : h('button', {
      type: 'button', class: 'tool', 'aria-label': b.label, title: b.shortcut !== undefined ? `${b.label} (${b.shortcut})` : b.label,
      'aria-pressed': b.active !== undefined ? 'false' : null,
      onmousedown: (e: MouseEvent) => e.preventDefault(), // keep the editor's selection
      onclick: () => b.run(editor),
    }, icon(b.icon)))
  const toolbar = h('div', { class: 'editor-toolbar', role: 'toolbar', 'aria-label': 'Formatting', 'aria-controls': `editor-${id}` }, buttons)
  // arrow keys move between the toolbar's buttons
  toolbar.addEventListener('keydown', e => {
    if (e.key !== 'ArrowRight' && e.key !== 'ArrowLeft' && e.key !== 'Home' && e.key !== 'End') return
    const tools = [...toolbar.querySelectorAll<HTMLButtonElement>('button.tool:not(:disabled)')]
    const at = tools.indexOf(document.activeElement as HTMLButtonElement)
    const next = e.key === 'Home' ? 0 : e.key === 'End' ? tools.length - 1 : (at + (e.key === 'ArrowRight' ? 1 : -1) + tools.length) % tools.length
    tools[next]?.focus()
    e.preventDefault()
  })
  const surface = h('div', { class: 'editor-surface' })
  frame.body.append(toolbar, frame.typing, surface)
  container.appendChild(frame.element)

  const editor: Editor = new Editor({
    element: surface,
    editable: !frame.readOnly(),
    extensions: [
      // Collaboration brings its own undo (this user's changes only); trailing nodes would be written by every client at once
      StarterKit.configure({ undoRedo: false, trailingNode: false, link: { openOnClick: false } }),
      Placeholder.configure({ placeholder: 'Start writing…' }),
      Collaboration.configure({ document: handle.doc, field: RICH_TEXT_FIELD }),
      CollaborationCaret.configure({
        provider: { awareness: handle.awareness },
        user: { name: ctx.user.name, color: ctx.user.color, role: ctx.user.role },
      }),
    ],
    editorProps: {
      attributes: {
        id: `editor-${id}`, class: 'prose', role: 'textbox', 'aria-multiline': 'true', 'aria-label': 'Document text', 'data-testid': 'editor',
      },
    },
  })
  schema = editor.schema

  const updateToolbar = (): void => {
    TOOLBAR.forEach((b, i) => {
      if (b === 'separator') return
      const el = buttons[i] as HTMLButtonElement
      if (b.active !== undefined) el.setAttribute('aria-pressed', String(b.active(editor)))
      if (b.enabled !== undefined) el.disabled = !b.enabled(editor)
    })
  }
  const typing = new Presence(handle.awareness, { typingTimeoutMs: 1500 })
  editor.on('transaction', ({ transaction }) => {
    if (transaction.docChanged && !isChangeOrigin(transaction) && editor.isEditable) typing.typing()
    updateToolbar()
  })
  updateToolbar()

  const applyRole = (readOnly: boolean): void => {
    if (editor.isEditable === readOnly) editor.setEditable(!readOnly)
    toolbar.hidden = readOnly
    editor.view.dom.setAttribute('aria-readonly', String(readOnly))
  }
  frame.onRoleChange(applyRole)
  applyRole(frame.readOnly())

  if (id === SAMPLES.welcome.id) {
    void handle.whenSynced().then(() => {
      if (destroyed || frame.readOnly()) return
      applySeed(handle.doc, SEED_CLIENTS.base, doc => prosemirrorJSONToYXmlFragment(editor.schema, WELCOME, doc.getXmlFragment(RICH_TEXT_FIELD)))
    })
  }

  return {
    destroy() {
      destroyed = true
      typing.destroy()
      editor.destroy()
      frame.destroy()
      handle.close()
    },
  }
}

/** A version's rich text, rendered read-only with the editor's schema. */
function renderPreview(update: Uint8Array, schema: Schema): Node {
  const doc = new Y.Doc()
  Y.applyUpdate(doc, update)
  const node = yXmlFragmentToProseMirrorRootNode(doc.getXmlFragment(RICH_TEXT_FIELD), schema)
  doc.destroy()
  if (node.textContent.trim() === '') return h('p', { class: 'muted' }, 'This version is empty.')
  const out = h('div', { class: 'prose' })
  out.appendChild(DOMSerializer.fromSchema(schema).serializeFragment(node.content))
  return out
}

const text = (t: string, marks?: string[]): JSONContent => ({ type: 'text', text: t, ...(marks ? { marks: marks.map(type => ({ type })) } : {}) })
const para = (...content: JSONContent[]): JSONContent => ({ type: 'paragraph', content })
const item = (...content: JSONContent[]): JSONContent => ({ type: 'listItem', content: [para(...content)] })

/** What a new server's welcome document says. */
const WELCOME: JSONContent = {
  type: 'doc',
  content: [
    { type: 'heading', attrs: { level: 1 }, content: [text('Welcome to Concord')] },
    para(text('This document is live. Everyone who opens it edits the same text at the same time, and sees who else is here, where their caret is, and who is typing.')),
    { type: 'heading', attrs: { level: 2 }, content: [text('Try it')] },
    {
      type: 'bulletList',
      content: [
        item(text('Open this page in a '), text('second window', ['bold']), text(', sign in with another name, and type in both.')),
        item(text('Turn your network off, keep writing, turn it on again: the status goes '), text('Offline', ['italic']), text(', then '), text('Saved', ['italic']), text(', and nothing is lost.')),
        item(text('Open '), text('History', ['bold']), text(' to save a named version, preview an older one, or restore it.')),
        item(text('Sign in as a '), text('viewer', ['bold']), text(' to follow along without changing anything.')),
      ],
    },
    { type: 'heading', attrs: { level: 2 }, content: [text('How it works')] },
    para(text('Concord is a self-hostable server for Yjs. '), text('Saved', ['bold']), text(' means the server has stored your change durably, not merely received it. This text, the boards and even the list of documents on the left are Concord documents.')),
  ],
}
