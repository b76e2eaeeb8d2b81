import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import path from 'node:path'

export const REPO_ROOT = path.resolve(import.meta.dirname, '../..')

/** CPU time (user + system) of a process and its RSS, read from /proc. */
export interface ProcessSample {
  cpuMicros: number
  /** The part of `cpuMicros` spent in the kernel (system time): socket writes, mostly. */
  kernelCpuMicros: number
  rssBytes: number
}

const CLOCK_TICKS_PER_SECOND = 100

export function sampleProcess (pid: number): ProcessSample {
  // Fields after the command name (which may contain spaces) start after the last ')'.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const utime = Number(fields[11])
  const stime = Number(fields[12])
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0)
  return { cpuMicros: ((utime + stime) * 1_000_000) / CLOCK_TICKS_PER_SECOND, kernelCpuMicros: (stime * 1_000_000) / CLOCK_TICKS_PER_SECOND, rssBytes: rssKb * 1024 }
}

export function sampleProcesses (pids: number[]): ProcessSample {
  return pids.map(sampleProcess).reduce((sum, s) => ({
    cpuMicros: sum.cpuMicros + s.cpuMicros,
    kernelCpuMicros: sum.kernelCpuMicros + s.kernelCpuMicros,
    rssBytes: sum.rssBytes + s.rssBytes
  }), { cpuMicros: 0, kernelCpuMicros: 0, rssBytes: 0 })
}

export interface Server {
  url: string
  child: ChildProcess
  pids: () => number[]
  stop: () => Promise<void>
}

/** A Node server of the repository's (`startNodeServer`). */
export interface NodeServer extends Server {
  /** What the server wrote to stdout so far; empty unless it was started with `captureStdout`. */
  stdout: () => string
}

/** Starts the built tickstream server (`dist/src/server.js`) and resolves once it listens. */
export async function startTickstream (env: Record<string, string>, nodeArgs: string[] = []): Promise<Server> {
  return await startNodeServer(path.join(REPO_ROOT, 'dist/src/server.js'), nodeArgs, env)
}

/**
 * The registration load run's other servers, built like the service (`npm run build`), not run
 * through tsx: the breakdown server runs the app's own modules, and the tests' coverage of a
 * file must come from one compilation of it.
 */
export async function startBaselineServer (): Promise<Server> {
  return await startNodeServer(path.join(REPO_ROOT, 'dist/load/baseline-server.js'), [], {})
}

/** See load/breakdown-server.ts. */
export async function startBreakdownServer (env: Record<string, string>): Promise<Server> {
  return await startNodeServer(path.join(REPO_ROOT, 'dist/load/breakdown-server.js'), [], env)
}

export async function freePort (): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const address = server.address()
  server.close()
  if (address === null || typeof address === 'string') throw new Error('no free port')
  return address.port
}

/**
 * Polls `url` until it answers 200: the server is up (logs stay at warn, so no "listening"
 * line). `timeoutMs` is longer for a server started under valgrind.
 */
export async function waitUntilServing (url: string, child: ChildProcess, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`server exited (${child.exitCode ?? child.signalCode}) before serving`)
    try {
      const res = await fetch(url)
      if (res.ok) return
    } catch {}
    await delay(100)
  }
  throw new Error(`${url} did not answer within ${timeoutMs / 1000} s`)
}

/**
 * A built server of the repository's in a process of its own, resolved once it answers
 * `/health`. `captureStdout` keeps what it writes to stdout (a `--trace-gc-nvp` trace, say)
 * for `stdout()` instead of passing it through.
 */
export async function startNodeServer (file: string, nodeArgs: string[], env: Record<string, string>, captureStdout = false): Promise<NodeServer> {
  const port = await freePort()
  // LOAD_SERVER_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") profiles the server under load.
  const extraArgs = (process.env.LOAD_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean)
  const child = spawn(process.execPath, [...extraArgs, ...nodeArgs, file], {
    cwd: REPO_ROOT,
    env: { ...process.env, HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...env, PORT: String(port), NODE_OPTIONS: '' },
    stdio: ['ignore', captureStdout ? 'pipe' : 'inherit', 'inherit']
  })
  const exited = once(child, 'exit')
  let output = ''
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  const stop = async (): Promise<void> => {
    // A server that already died (and made waitUntilServing throw) has nothing to stop.
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
    await exited
  }
  const url = `http://127.0.0.1:${port}`
  try {
    await waitUntilServing(`${url}/health`, child)
  } catch (err) {
    await stop()
    throw err
  }
  const pid = child.pid ?? 0
  return { url, child, pids: () => [pid], stop, stdout: () => output }
}

export function percentile (sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[index] ?? Number.NaN
}

export async function delay (ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms))
}
