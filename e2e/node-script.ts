import { spawn } from 'node:child_process'

export interface ScriptResult { code: number | null; stdout: string; stderr: string }

/** Runs `node <script> ...args` from `cwd`; kills it (and says so) if it has not exited after `timeoutMs`. */
export function runNodeScript(script: string, args: string[], { cwd, timeoutMs = 30_000 }: { cwd?: string; timeoutMs?: number } = {}): Promise<ScriptResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString() })
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`node ${script} ${args.join(' ')} had not exited after ${timeoutMs} ms (something kept it alive)\nstdout: ${stdout}\nstderr: ${stderr}`))
    }, timeoutMs)
    child.once('error', reject)
    child.once('exit', code => { clearTimeout(timer); resolve({ code, stdout, stderr }) })
  })
}
