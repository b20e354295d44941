import { describe, expect, it } from 'vitest'
import { spawn, spawnSync } from 'node:child_process'
import { accessSync, constants, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { builtinModules } from 'node:module'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { spawnServer } from './server-process.js'
import { cleanupAfterEach } from './cleanup.js'
import { runNodeScript } from './node-script.js'

// Issue 18, "Packages a user can install": the published packages, packed with `npm pack` and
// installed from the tarballs into a fresh project outside the repository, run a server and
// clients. Static checks of the manifests come first (fast, and they name the problem).
//
// The packages published from this repository (folders of the repository). Adding one is one line.
const PUBLISHED = [
  'packages/protocol',
  'packages/client',
  'packages/server',
  'packages/react',
]

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const SCRIPT = fileURLToPath(new URL('./fixtures/node-sdk-script.mjs', import.meta.url))
const REACT_SCRIPT = fileURLToPath(new URL('./fixtures/react-hooks-script.mjs', import.meta.url))
/** An upper bound for `npm install` of the tarballs (measured: see the install step). */
const INSTALL_TIMEOUT_MS = 6 * 60_000

interface Manifest {
  name: string
  version: string
  private?: boolean
  license?: string
  type?: string
  engines?: { node?: string }
  main?: string
  types?: string
  bin?: Record<string, string>
  files?: string[]
  exports?: Record<string, string | { types?: string; default?: string }>
  dependencies?: Record<string, string>
  optionalDependencies?: Record<string, string>
  peerDependencies?: Record<string, string>
  devDependencies?: Record<string, string>
}

function manifest(dir: string): Manifest {
  return JSON.parse(readFileSync(join(ROOT, dir, 'package.json'), 'utf8')) as Manifest
}

function filesUnder(dir: string, keep: (name: string) => boolean): string[] {
  if (!existsSync(dir)) return []
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).map(f => join(dir, f)).filter(f => keep(f) && statSync(f).isFile())
}

/** The packages a compiled file imports by bare specifier (static, dynamic and re-exports; Node built-ins aside). */
function bareImports(file: string): string[] {
  const code = readFileSync(file, 'utf8')
  const names = new Set<string>()
  for (const m of code.matchAll(/(?:^|[\s;])(?:import|export)\s[^'"]*?\bfrom\s*['"]([^'"]+)['"]|\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)|^\s*import\s+['"]([^'"]+)['"]/gm)) {
    const spec = (m[1] ?? m[2] ?? m[3])!
    if (spec.startsWith('.') || spec.startsWith('node:') || builtinModules.includes(spec.split('/')[0]!)) continue
    names.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!)
  }
  return [...names]
}

function run(command: string, args: string[], cwd: string, timeoutMs: number, env: NodeJS.ProcessEnv = process.env): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const started = Date.now()
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString() })
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`${command} ${args.join(' ')} (in ${cwd}) did not finish within ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`))
    }, timeoutMs)
    child.once('error', reject)
    child.once('exit', code => { clearTimeout(timer); resolve({ code, stdout, stderr, ms: Date.now() - started }) })
  })
}

/**
 * better-sqlite3 installs a prebuilt binary from GitHub, or compiles SQLite (about 100 s on these
 * machines, which cannot reach GitHub). When npm picks the version the repository built, hand that
 * binary to its installer as a local prebuild (prebuild-install reads `local-prebuilds` from a
 * `.prebuild-installrc` up the tree from the package), as a user's machine gets it from GitHub; any
 * other version compiles, which is slower but still within INSTALL_TIMEOUT_MS.
 */
function offerLocalBetterSqlite3Prebuild(project: string, work: string): string {
  const built = join(ROOT, 'node_modules/better-sqlite3')
  const binary = join(built, 'build/Release/better_sqlite3.node')
  if (!existsSync(binary)) return 'none (the repository has no built better-sqlite3)'
  const { version } = JSON.parse(readFileSync(join(built, 'package.json'), 'utf8')) as { version: string }
  const dir = join(work, 'prebuilds')
  mkdirSync(dir, { recursive: true })
  const name = `better-sqlite3-v${version}-node-v${process.versions.modules}-${process.platform}-${process.arch}.tar.gz`
  const tar = spawnSync('tar', ['-czf', join(dir, name), '-C', built, 'build/Release/better_sqlite3.node'], { encoding: 'utf8' })
  if (tar.status !== 0) return `none (tar failed: ${tar.stderr})`
  writeFileSync(join(project, '.prebuild-installrc'), `local-prebuilds=${dir}\n`)
  return name
}

describe('the published packages', () => {
  const { procs, dirs } = cleanupAfterEach()

  it('have manifests fit for publishing: files, exports, engines, license, and every runtime import declared', () => {
    const manifests = PUBLISHED.map(dir => ({ dir, m: manifest(dir) }))
    const versions = new Map(manifests.map(({ m }) => [m.name, m.version]))
    const problems: string[] = []
    for (const { dir, m } of manifests) {
      const at = `${dir}/package.json`
      if (!m.name.startsWith('@concord/')) problems.push(`${at}: name ${m.name} is not in the @concord scope`)
      if (m.private) problems.push(`${at}: private, so npm would refuse to publish it`)
      if (m.version !== manifest('.').version) problems.push(`${at}: version ${m.version}, the repository's is ${manifest('.').version}`)
      if (!m.license) problems.push(`${at}: no license`)
      if (m.type !== 'module') problems.push(`${at}: not "type": "module"`)
      if (m.engines?.node !== manifest('.').engines?.node) problems.push(`${at}: engines.node ${m.engines?.node}, the repository's is ${manifest('.').engines?.node}`)
      if (!m.files?.includes('dist')) problems.push(`${at}: files does not include dist`)
      const targets = [m.main, m.types, ...Object.values(m.bin ?? {}), ...Object.values(m.exports ?? {}).flatMap(e => typeof e === 'string' ? [e] : [e.types, e.default])]
      if (!m.exports?.['.']) problems.push(`${at}: no exports["."]`)
      for (const t of targets) {
        if (t === undefined) problems.push(`${at}: an export without types or default`)
        else if (!existsSync(join(ROOT, dir, t))) problems.push(`${at}: ${t} does not exist (run npm run build)`)
      }
      // our packages depend on each other at exactly the version in the repository
      for (const [name, range] of Object.entries(m.dependencies ?? {})) {
        if (name.startsWith('@concord/') && range !== versions.get(name)) problems.push(`${at}: depends on ${name}@${range}, which is ${versions.get(name) ?? 'not published from here'}`)
      }
      // every package the shipped code imports is declared (a devDependency of the root is not installed for users)
      const declared = new Set([...Object.keys(m.dependencies ?? {}), ...Object.keys(m.optionalDependencies ?? {}), ...Object.keys(m.peerDependencies ?? {})])
      const imported = new Set<string>()
      for (const file of [...filesUnder(join(ROOT, dir, 'dist'), f => /\.m?js$/.test(f)), ...filesUnder(join(ROOT, dir, 'bin'), f => /\.m?js$/.test(f))]) {
        for (const name of bareImports(file)) {
          imported.add(name)
          if (!declared.has(name) && name !== m.name) problems.push(`${relative(ROOT, file)} imports ${name}, which ${at} does not declare`)
        }
      }
      // a package our declarations import counts as used (yjs in @concord/react's, imported for its
      // types only: a TypeScript user needs it to resolve them), and so do its types (@types/pg for pg)
      const typed = new Set(filesUnder(join(ROOT, dir, 'dist'), f => f.endsWith('.d.ts')).flatMap(bareImports).flatMap(n => [n, `@types/${n.replace(/^@(.*)\/(.*)$/, '$1__$2')}`]))
      for (const name of Object.keys(m.dependencies ?? {})) {
        if (!imported.has(name) && !typed.has(name)) problems.push(`${at}: depends on ${name}, which nothing in dist/ or bin/ imports`)
      }
      // a compiled file whose source is gone would still be packed (tsc -b does not delete it)
      for (const file of filesUnder(join(ROOT, dir, 'dist'), f => f.endsWith('.js'))) {
        const source = relative(join(ROOT, dir, 'dist'), file).replace(/\.js$/, '')
        if (!['.ts', '.tsx', '.mts'].some(ext => existsSync(join(ROOT, dir, 'src', source + ext)))) {
          problems.push(`${relative(ROOT, file)} has no source in src/ and would be packed: remove ${dir}/dist and run npm run build`)
        }
      }
    }
    expect(problems).toEqual([])
  })

  it('install from their tarballs into a fresh project, where concord serve, two Node clients and a React component run', async () => {
    const work = mkdtempSync(join(tmpdir(), 'concord-package-install-'))
    dirs.push(work)
    const tarballs = join(work, 'tarballs')
    const project = join(work, 'project')
    mkdirSync(tarballs)
    mkdirSync(project)

    // npm pack each package (what `npm publish` would upload)
    const packed: string[] = []
    for (const dir of PUBLISHED) {
      const pack = await run('npm', ['pack', '--json', '--pack-destination', tarballs], join(ROOT, dir), 60_000)
      expect(pack.code, `npm pack in ${dir}: ${pack.stderr}`).toBe(0)
      const [{ filename, files }] = JSON.parse(pack.stdout) as [{ filename: string; files: { path: string }[] }]
      expect(files.filter(f => /\.test\.(ts|js|d\.ts)$/.test(f.path)), `${dir} packs no tests`).toEqual([])
      expect(files.filter(f => /(^|\/)testing\.(ts|js|d\.ts)$/.test(f.path)), `${dir} packs no test helpers`).toEqual([])
      packed.push(join(tarballs, filename))
    }

    // a fresh project, as `npm init -y` and "type": "module" make it (written directly: one process
    // less); install scripts allowed for the two packages that have one (npm 11 asks for that in
    // allowScripts, as the repository does)
    writeFileSync(join(project, 'package.json'), JSON.stringify({
      name: 'concord-install-check', version: '1.0.0', private: true, type: 'module',
      allowScripts: { 'better-sqlite3': true, bufferutil: true },
    }, null, 2))
    const prebuild = offerLocalBetterSqlite3Prebuild(project, work)
    // --prefer-offline: what the npm cache holds (after `npm ci` of the repository, most of it) is not
    // revalidated against the registry; the rest is fetched from it
    // with @types/node as a TypeScript user on Node 20 has it (for the type-check below), and what a
    // React app adds for @concord/react: react and react-dom (its peer), their types, and happy-dom to
    // render in Node (as the package's own tests do), at the versions the repository builds and tests it with
    const reactDev = manifest('packages/react').devDependencies ?? {}
    const reactApp = ['react', 'react-dom', '@types/react', '@types/react-dom', 'happy-dom'].map(name => {
      expect(reactDev[name], `packages/react/package.json devDependencies.${name}`).toBeDefined()
      return `${name}@${reactDev[name]}`
    })
    const install = await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', ...packed, '@types/node@^20', ...reactApp], project, INSTALL_TIMEOUT_MS)
    console.log(`npm install of ${packed.length} tarballs: ${(install.ms / 1000).toFixed(1)} s (better-sqlite3 local prebuild: ${prebuild})`)
    expect(install.code, `npm install failed:\n${install.stderr}`).toBe(0)
    // a clean install prints no engine warning for a runtime dependency
    expect(install.stderr.split('\n').filter(l => /EBADENGINE/.test(l))).toEqual([])

    // what got installed is ours, from the tarballs, once (not a registry copy of the same name)
    const lock = JSON.parse(readFileSync(join(project, 'package-lock.json'), 'utf8')) as { packages: Record<string, { resolved?: string; version?: string }> }
    for (const dir of PUBLISHED) {
      const { name, version } = manifest(dir)
      const entry = lock.packages[`node_modules/${name}`]
      expect(entry?.version, name).toBe(version)
      expect(entry?.resolved, name).toMatch(/^file:.*\.tgz$/)
      expect(Object.keys(lock.packages).filter(p => p.endsWith(`/node_modules/${name}`)), `nested copies of ${name}`).toEqual([])
    }

    // a TypeScript user's strict type-check of every export (skipLibCheck off: our declarations
    // must resolve everything they name from what the packages install)
    const entries = PUBLISHED.flatMap(dir => {
      const { name, exports = {} } = manifest(dir)
      return Object.keys(exports).filter(k => k !== './package.json').map(k => name + k.slice(1))
    })
    writeFileSync(join(project, 'consumer.ts'), entries.map((e, i) => `import * as m${i} from '${e}'\n`).join('') + `console.log(${entries.map((_, i) => `m${i}`).join(', ')})\n`)
    // and a component on the React hooks, typed as an app would write it
    writeFileSync(join(project, 'react-consumer.ts'), [
      `import { createElement, useEffect, type ReactNode } from 'react'`,
      `import { createRoot } from 'react-dom/client'`,
      `import { createClient } from '@concord/client'`,
      `import { ConcordProvider, useDocument, usePresence, useStatus, useText, useVersions, type DocumentStatus, type VersionsState } from '@concord/react'`,
      `function Editor({ name }: { name: string }): ReactNode {`,
      `  const handle = useDocument(name)`,
      `  const text: string = useText(handle, 'body')`,
      `  const status: DocumentStatus = useStatus(handle)`,
      `  const versions: VersionsState = useVersions(handle)`,
      `  const [peers, setMine] = usePresence<{ name: string }>(handle)`,
      `  useEffect(() => { setMine({ name: 'Ada' }) }, [setMine])`,
      `  return createElement('p', null, text, String(status.saved), String(versions.versions?.length ?? 0), String(peers.length))`,
      `}`,
      `const client = createClient({ url: 'ws://localhost:1234' })`,
      `createRoot(document.body).render(createElement(ConcordProvider, { client }, createElement(Editor, { name: 'acme/plan' })))`,
      ``,
    ].join('\n'))
    writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { strict: true, noEmit: true, skipLibCheck: false, target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', lib: ['ES2022', 'DOM'], types: ['node'] },
      files: ['consumer.ts', 'react-consumer.ts'],
    }))
    const tsc = await run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', project], project, 120_000)
    expect(tsc.stdout + tsc.stderr).toBe('')
    expect(tsc.code).toBe(0)

    // the server, through the bin npm linked for `concord` (npx concord serve ...)
    const bin = join(project, 'node_modules/.bin/concord')
    accessSync(bin, constants.X_OK)
    const data = join(work, 'data')
    const server = await spawnServer(['--data', data, '--port', '0'], {}, [], bin)
    procs.push(server)
    expect(server.logs.join('\n')).toMatch(/using SQLite store/)

    // a client script in the project, on the installed @concord/client/node: edit, durable-save ack, exit 0
    const script = join(project, 'edit.mjs')
    copyFileSync(SCRIPT, script)
    const write = await runNodeScript(script, [server.url, 'installed', 'write', 'from the tarballs'], { cwd: project })
    expect(write.stderr).toBe('')
    expect(write.code).toBe(0)
    expect(JSON.parse(write.stdout.trim())).toMatchObject({ text: 'from the tarballs', saved: true })
    // a React component on the installed @concord/react (react-dom on happy-dom, in Node) shows the
    // edit, appends to it, sees it saved, and saves and lists a named version; then it exits by itself
    const reactScript = join(project, 'react-hooks.mjs')
    copyFileSync(REACT_SCRIPT, reactScript)
    const react = await runNodeScript(reactScript, [server.url, 'installed', 'from the tarballs', ' and React'], { cwd: project })
    expect(react.stderr).toBe('')
    expect(react.code).toBe(0)
    expect(JSON.parse(react.stdout.trim())).toEqual({
      before: { text: 'from the tarballs', status: 'saved' },
      after: { text: 'from the tarballs and React', status: 'saved' },
      versions: ['from React'],
      error: null,
    })
    // and another client sees both edits
    const read = await runNodeScript(script, [server.url, 'installed', 'read', 'from the tarballs and React'], { cwd: project })
    expect(read.stderr).toBe('')
    expect(read.code).toBe(0)
    expect(JSON.parse(read.stdout.trim())).toMatchObject({ text: 'from the tarballs and React' })
  }, INSTALL_TIMEOUT_MS + 120_000)
})
