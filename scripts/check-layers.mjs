#!/usr/bin/env node
// Lint: the import structure of the packages, read from the TypeScript sources.
//
// It reads the sources (not the compiled output) because type-only imports
// vanish from the JavaScript: a cycle or a wrong-way import made only of
// `import type` was invisible to the madge check on dist/ this replaces. It
// therefore also runs before `npm run build` has produced anything.
//
// Fails (exit 1, one line per problem) on:
// - an import cycle among the sources of a package (type-only edges included);
// - an import in packages/server/src against the layer table below, or a module
//   outside every layer folder;
// - a package import that crosses the package boundaries (protocol imports
//   nothing of ours; client and server import only @concord/protocol, react
//   only @concord/client; no relative import leaves the package's src/), or a
//   package importing its own index.ts;
// - a browser-side client file importing a Node built-in or a Node entry file,
//   or a react file importing a Node built-in.
// Test files (*.test.ts) and documents/testing.ts are parsed and take part in
// the cycle check, but are exempt from the layer and boundary rules (they run
// in Node and may reach anything they test).
import ts from 'typescript'
import { builtinModules } from 'node:module'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

// ---------------------------------------------------------------------------
// The rules (docs/architecture.md copies this table; keep the two equal).

/**
 * Layers of packages/server/src: a layer may import from itself and from the
 * layers listed, nothing else of the server. `root` is the composition root:
 * the files SERVER_ROOT_FILES directly in src. Nested folders (ops/recording/,
 * http/dashboard/) belong to their top folder's layer.
 */
export const SERVER_LAYERS = {
  cli: ['root', 'http', 'gateway', 'ops', 'content', 'auth', 'documents', 'regions', 'storage', 'backplane', 'config'],
  root: ['http', 'gateway', 'ops', 'content', 'auth', 'documents', 'regions', 'storage', 'backplane', 'config'],
  http: ['documents', 'content', 'ops', 'auth', 'regions', 'storage', 'backplane', 'config'],
  gateway: ['documents', 'content', 'ops', 'auth', 'storage', 'backplane', 'config'],
  ops: ['documents', 'content', 'storage', 'backplane', 'config'],
  content: ['documents', 'storage', 'config'],
  auth: ['storage', 'backplane', 'config'],
  documents: ['storage', 'backplane', 'config'],
  regions: ['storage', 'backplane', 'config'],
  /** Shipped server extensions: built only on the hook API (documents/extension-hooks.ts). */
  extensions: ['documents'],
  storage: ['config'],
  backplane: ['config'],
  config: [],
}

/** The only files allowed directly in packages/server/src (the composition root). */
export const SERVER_ROOT_FILES = ['server.ts', 'server-options.ts', 'index.ts']

/** Files (relative to packages/server/src) exempt from the layer rules, besides *.test.ts. */
export const LAYER_EXEMPT_FILES = ['documents/testing.ts', 'gateway/testing.ts']

/** Which of our packages each package may import (by bare specifier). */
export const PACKAGE_IMPORTS = {
  protocol: [],
  server: ['@concord/protocol'],
  client: ['@concord/protocol'],
  /** The React bindings: built on the SDK's public API only (never the server, nor the protocol directly). */
  react: ['@concord/client'],
}

/** Files of packages/client/src that run only in Node and so may import Node built-ins. */
export const CLIENT_NODE_FILES = ['node.ts', 'file-offline-store.ts']

// ---------------------------------------------------------------------------

const OUR_SCOPE = '@concord/'
const NODE_BUILTINS = new Set(builtinModules)
const SOURCE_EXTENSIONS = ['.ts', '.tsx', '.mts', '.cts']
/** A compiled-extension specifier and the source extensions it may come from. */
const JS_TO_TS = [['.js', ['.ts', '.tsx']], ['.mjs', ['.mts']], ['.cjs', ['.cts']], ['.jsx', ['.tsx']]]

/**
 * Checks the packages under `root` (a repository root holding packages/<name>/src).
 * Returns the problems found, one line each, with paths relative to `root`.
 * @param {string} root
 * @param {{ packages?: string[] }} [options] which packages to check (default: those of PACKAGE_IMPORTS that exist)
 * @returns {{ problems: string[], files: number, packages: string[] }}
 */
export function checkLayers(root, options = {}) {
  const rootDir = resolve(root)
  const packages = options.packages ?? Object.keys(PACKAGE_IMPORTS).filter(p => existsSync(join(rootDir, 'packages', p, 'src')))
  const problems = []
  let files = 0
  for (const pkg of packages) {
    const src = join(rootDir, 'packages', pkg, 'src')
    if (!existsSync(src)) {
      problems.push(`packages/${pkg}/src is missing`)
      continue
    }
    const ctx = { rootDir, pkg, src, problems }
    const graph = new Map() // file -> edges
    for (const file of walk(src)) {
      files++
      graph.set(file, readImports(file).map(imp => ({ ...imp, target: imp.specifier.startsWith('.') ? resolveRelative(file, imp.specifier) : null })))
    }
    if (pkg === 'server') checkLayerFolders(ctx)
    for (const [file, edges] of graph) {
      for (const edge of edges) checkEdge(ctx, file, edge)
    }
    for (const cycle of findCycles(graph)) {
      const path = cycle.map((step, i) => i === 0 ? rel(ctx, step.file) : `${step.typeOnly ? '-(type)->' : '->'} ${rel(ctx, step.file)}`).join(' ')
      problems.push(`import cycle in ${pkg}: ${path}`)
    }
  }
  return { problems, files, packages }
}

/** Every layer folder is in the table and every file of src sits in one (or is the composition root). */
function checkLayerFolders(ctx) {
  for (const entry of readdirSync(ctx.src, { withFileTypes: true })) {
    if (entry.isDirectory()) {
      if (!(entry.name in SERVER_LAYERS)) ctx.problems.push(`${rel(ctx, join(ctx.src, entry.name))}/ is not a layer of the table in scripts/check-layers.mjs (${Object.keys(SERVER_LAYERS).join(', ')})`)
    } else if (isSource(entry.name) && !SERVER_ROOT_FILES.includes(entry.name) && !isLayerExempt(ctx, join(ctx.src, entry.name))) {
      ctx.problems.push(`${rel(ctx, join(ctx.src, entry.name))} lives directly in src; every module but ${SERVER_ROOT_FILES.join(', ')} belongs in a layer folder`)
    }
  }
}

function checkEdge(ctx, file, edge) {
  const { pkg, problems } = ctx
  const where = `${rel(ctx, file)}:${edge.line}`
  const spec = edge.specifier
  const isTest = isTestFile(file)

  if (spec.startsWith('.')) {
    if (edge.target === null) {
      problems.push(`${where} imports ${spec}, which resolves to no source file`)
      return
    }
    if (!isInside(ctx.src, edge.target)) {
      if (!isTest) problems.push(`${where} imports ${spec}, outside packages/${pkg}/src`)
      return
    }
    if (edge.target === join(ctx.src, 'index.ts') && !isTest) {
      problems.push(`${where} imports its own package index (${spec})`)
    }
    if (pkg === 'server' && !isLayerExempt(ctx, file)) checkLayerEdge(ctx, file, edge, where)
    if (pkg === 'client' && !isTest && !isClientNodeFile(ctx, file) && isClientNodeFile(ctx, edge.target)) {
      problems.push(`${where} imports the Node-only ${spec}; the client must run in browsers (only ${CLIENT_NODE_FILES.join(', ')} may)`)
    }
    return
  }

  if (isTest) return
  if (spec.startsWith(OUR_SCOPE)) {
    const allowed = PACKAGE_IMPORTS[pkg] ?? []
    if (!allowed.some(a => spec === a || spec.startsWith(a + '/'))) {
      problems.push(`${where} imports ${spec}, which ${pkg} may not import (allowed: ${allowed.length ? allowed.join(', ') : 'nothing of ours'})`)
    }
  }
  if (pkg === 'client' && !isClientNodeFile(ctx, file) && isNodeBuiltin(spec)) {
    problems.push(`${where} imports the Node built-in ${spec}; the client must run in browsers (only ${CLIENT_NODE_FILES.join(', ')} may)`)
  }
  if (pkg === 'react' && isNodeBuiltin(spec)) {
    problems.push(`${where} imports the Node built-in ${spec}; the React bindings must run in browsers`)
  }
}

function checkLayerEdge(ctx, file, edge, where) {
  const from = layerOf(ctx, file)
  const to = layerOf(ctx, edge.target)
  if (from === null || to === null || from === to) return // a file outside every layer is reported once, by checkLayerFolders
  const allowed = SERVER_LAYERS[from]
  if (allowed === undefined || SERVER_LAYERS[to] === undefined) return // an unknown folder, reported by checkLayerFolders
  if (!allowed.includes(to)) {
    const kind = edge.typeOnly ? 'type-only import of' : 'imports'
    ctx.problems.push(`${where} ${kind} ${rel(ctx, edge.target)}: ${layerName(from)} may not import ${layerName(to)} (allowed: ${allowed.length ? allowed.map(layerName).join(', ') : 'nothing of the server'})`)
  }
}

/** The layer of a server source file: its top folder under src, `root` for the composition root, null otherwise. */
function layerOf(ctx, file) {
  const parts = relative(ctx.src, file).split(sep)
  if (parts.length > 1) return parts[0]
  return SERVER_ROOT_FILES.includes(parts[0]) ? 'root' : null
}

function layerName(layer) {
  return layer === 'root' ? `the composition root (${SERVER_ROOT_FILES.join(', ')})` : `${layer}/`
}

function isLayerExempt(ctx, file) {
  return isTestFile(file) || LAYER_EXEMPT_FILES.includes(relative(ctx.src, file).split(sep).join('/'))
}

function isClientNodeFile(ctx, file) {
  return CLIENT_NODE_FILES.includes(relative(ctx.src, file).split(sep).join('/'))
}

function isTestFile(file) {
  return /\.test\.[mc]?tsx?$/.test(file)
}

function isNodeBuiltin(spec) {
  return spec.startsWith('node:') || NODE_BUILTINS.has(spec) || NODE_BUILTINS.has(spec.split('/')[0])
}

function isSource(name) {
  return SOURCE_EXTENSIONS.some(e => name.endsWith(e)) && !/\.d\.[mc]?ts$/.test(name)
}

function isInside(dir, file) {
  const r = relative(dir, file)
  return r !== '' && !r.startsWith('..') && !r.startsWith(sep)
}

function rel(ctx, file) {
  return relative(ctx.rootDir, file).split(sep).join('/')
}

/**
 * The module specifiers a source file names, with their line and whether the
 * import is erased from the JavaScript (`import type`, `export type`, an import
 * whose every name is `type`, or `import('x').T` in a type).
 * @param {string} file
 * @returns {{ specifier: string, line: number, typeOnly: boolean }[]}
 */
export function readImports(file) {
  const text = readFileSync(file, 'utf8')
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS)
  const out = []
  const add = (literal, typeOnly) => {
    if (!literal || !ts.isStringLiteralLike(literal)) return
    out.push({ specifier: literal.text, line: sf.getLineAndCharacterOfPosition(literal.getStart(sf)).line + 1, typeOnly })
  }
  const visit = node => {
    if (ts.isImportDeclaration(node)) {
      const clause = node.importClause
      const typeOnly = clause !== undefined && (clause.isTypeOnly || (clause.name === undefined && clause.namedBindings !== undefined &&
        ts.isNamedImports(clause.namedBindings) && clause.namedBindings.elements.length > 0 && clause.namedBindings.elements.every(e => e.isTypeOnly)))
      add(node.moduleSpecifier, typeOnly)
    } else if (ts.isExportDeclaration(node)) {
      const typeOnly = node.isTypeOnly || (node.exportClause !== undefined && ts.isNamedExports(node.exportClause) &&
        node.exportClause.elements.length > 0 && node.exportClause.elements.every(e => e.isTypeOnly))
      if (node.moduleSpecifier) add(node.moduleSpecifier, typeOnly)
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      add(node.moduleReference.expression, node.isTypeOnly)
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      add(node.arguments[0], false)
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      add(node.argument.literal, true)
    }
    ts.forEachChild(node, visit)
  }
  visit(sf)
  return out
}

/** The source file a relative specifier names: `./x.js` → x.ts, `./x` → x.ts or x/index.ts; null if none. */
function resolveRelative(fromFile, specifier) {
  const base = resolve(dirname(fromFile), specifier)
  const candidates = []
  for (const [js, sources] of JS_TO_TS) {
    if (base.endsWith(js)) candidates.push(...sources.map(e => base.slice(0, -js.length) + e))
  }
  if (isSource(base)) candidates.push(base)
  candidates.push(...SOURCE_EXTENSIONS.map(e => base + e), ...SOURCE_EXTENSIONS.map(e => join(base, 'index' + e)))
  return candidates.find(c => existsSync(c) && statSync(c).isFile()) ?? null
}

/**
 * One cycle per strongly connected group of files (Tarjan), as the shortest
 * path from the group's first file back to itself; edges marked type-only
 * when every import between the two files is.
 */
function findCycles(graph) {
  const next = new Map() // file -> Map(target -> typeOnly)
  for (const [file, edges] of graph) {
    const m = new Map()
    for (const e of edges) {
      if (e.target === null || !graph.has(e.target)) continue
      m.set(e.target, (m.get(e.target) ?? true) && e.typeOnly)
    }
    next.set(file, m)
  }
  let index = 0
  const idx = new Map(), low = new Map(), onStack = new Set(), stack = [], groups = []
  const strong = v => {
    idx.set(v, index); low.set(v, index); index++
    stack.push(v); onStack.add(v)
    for (const w of next.get(v).keys()) {
      if (!idx.has(w)) { strong(w); low.set(v, Math.min(low.get(v), low.get(w))) }
      else if (onStack.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)))
    }
    if (low.get(v) === idx.get(v)) {
      const group = []
      let w
      do { w = stack.pop(); onStack.delete(w); group.push(w) } while (w !== v)
      if (group.length > 1 || next.get(v).has(v)) groups.push(group)
    }
  }
  for (const v of [...graph.keys()].sort()) if (!idx.has(v)) strong(v)
  return groups.map(group => {
    const members = new Set(group)
    const start = [...group].sort()[0]
    // breadth-first from start, inside the group, until an edge returns to start
    const prev = new Map([[start, null]])
    const queue = [start]
    while (queue.length > 0) {
      const v = queue.shift()
      for (const w of next.get(v).keys()) {
        if (w === start) {
          const files = [start]
          for (let u = v; u !== null; u = prev.get(u)) files.unshift(u)
          // files = start, ..., v, start; each step is marked with the kind of the edge that reaches it
          return files.map((file, i) => ({ file, typeOnly: i > 0 && next.get(files[i - 1]).get(file) }))
        }
        if (members.has(w) && !prev.has(w)) { prev.set(w, v); queue.push(w) }
      }
    }
    return [{ file: start, typeOnly: false }]
  })
}

function* walk(dir) {
  for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const p = join(dir, e.name)
    if (e.isDirectory()) yield* walk(p)
    else if (isSource(e.name)) yield p
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const root = fileURLToPath(new URL('..', import.meta.url))
  const { problems: found, files, packages } = checkLayers(root)
  for (const p of found) console.error(`lint: ${p}`)
  if (found.length > 0) {
    console.error(`lint: ${found.length} problem(s) in the imports of ${packages.join(', ')}`)
    process.exit(1)
  }
  console.log(`lint: ${files} source files of ${packages.join(', ')}: no import cycles, layer or boundary violations`)
}
