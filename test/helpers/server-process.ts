import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { once } from 'node:events'
import path from 'node:path'

export const REPO_ROOT = path.resolve(import.meta.dirname, '../..')

/** Every variable the service reads: a child gets none of them from the parent. */
const SERVICE_VARIABLES = [
  'HOST', 'PORT', 'LOG_LEVEL', 'REDIS_URL', 'MAX_SESSIONS_PER_USER', 'MAX_TICKERS_PER_SESSION',
  'SESSION_TTL_MS', 'SESSION_MAX_AGE_MS', 'SWEEP_INTERVAL_MS', 'FLUSH_INTERVAL_MS', 'HEARTBEAT_MS',
  'RETRY_MS', 'SLOW_CONSUMER_MS', 'RATE_LIMIT_MAX', 'RATE_LIMIT_WINDOW_MS', 'FEED', 'FEED_TICKERS',
  'FEED_RATE', 'PUBLISH_TOKEN', 'JWT_SECRET', 'SHUTDOWN_GRACE_MS', 'SHED_EVENT_LOOP_DELAY_MS', 'ACCEPT_DESCRIPTORS'
]

export interface ServerProcess {
  child: ChildProcessWithoutNullStreams
  stdout: () => string
  stderr: () => string
  /** Resolves with the exit code (or null when killed by a signal) once all output is read. */
  exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
}

/**
 * Runs `src/server.ts` (or another entry point) in a child process with the test runner's own TypeScript loader
 * (`process.execArgv`), so the child is the real entry point and its coverage counts.
 */
export function spawnServer (env: Record<string, string>, entry = 'src/server.ts'): ServerProcess {
  const childEnv: NodeJS.ProcessEnv = { ...process.env }
  for (const name of SERVICE_VARIABLES) delete childEnv[name]
  Object.assign(childEnv, { HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', FEED: 'none' }, env)
  const child = spawn(process.execPath, [...process.execArgv, path.join(REPO_ROOT, entry)], {
    cwd: REPO_ROOT,
    env: childEnv
  })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  // A guard, not a wait: a server that wrongly keeps running must not hang the suite.
  const guard = setTimeout(() => child.kill('SIGKILL'), 60_000)
  const exited = once(child, 'close').then(([code, signal]) => {
    clearTimeout(guard)
    return { code: code as number | null, signal: signal as NodeJS.Signals | null }
  })
  return { child, stdout: () => stdout, stderr: () => stderr, exited }
}

/** Resolves with the base URL once the server logs that it listens. */
export async function listeningUrl (server: ServerProcess): Promise<string> {
  const match = await outputMatching(server, /"msg":"Server listening at (http:\/\/[^"]+)"/)
  return match[1] ?? ''
}

/** Resolves with the first match of `pattern` in the server's output, once it is there. */
export async function outputMatching (server: ServerProcess, pattern: RegExp): Promise<RegExpExecArray> {
  for (;;) {
    const match = pattern.exec(server.stdout())
    if (match !== null) return match
    const stillRunning = await Promise.race([
      once(server.child.stdout, 'data').then(() => true),
      server.exited.then(() => false)
    ])
    if (!stillRunning) throw new Error(`server exited before printing ${String(pattern)}: ${server.stderr()}`)
  }
}
