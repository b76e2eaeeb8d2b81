import { execFile, execFileSync, spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { Agent, request as httpRequest } from 'node:http'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { delay, freePort, REPO_ROOT, waitUntilServing } from './lib/process.js'
import { markdownTable, parseArgs, runAsScript, writeReport } from './lib/report.js'

/**
 * `npm run load:instructions`: CPU instructions per `POST /sessions`, counted by valgrind
 * (callgrind) for the bare route, the app's plugins around the bare handler, and tickstream.
 *
 * Throughput on this shared 2-core machine moves by ±10-20 % from one minute to the next; an
 * instruction count far less (about ±5 % between runs; compare targets of one run). Each
 * server runs under callgrind with `--single-threaded` (no concurrent JIT or GC threads), is
 * warmed up, has its counters zeroed, then serves N registrations one after another on one
 * keep-alive connection; the count of exactly those N is divided by N. The registration load
 * run (registration.ts) stays the measure of throughput and latency; this one tells which
 * change moved the cost, and by how much, with far less noise.
 *
 *   --warm N       registrations before counting (default 1500; the JIT settles by then)
 *   --requests N   registrations counted (default 1000)
 */

export interface InstructionTarget {
  name: string
  /** Built server, relative to the repository root. */
  script: string
  path: string
}

export const INSTRUCTION_TARGETS: InstructionTarget[] = [
  { name: 'bare Fastify route', script: 'dist/load/baseline-server.js', path: '/sessions' },
  { name: 'tickstream plugins, bare handler', script: 'dist/load/breakdown-server.js', path: '/sessions-bare' },
  { name: 'tickstream', script: 'dist/src/server.js', path: '/sessions' }
]

export interface InstructionResult {
  target: string
  requests: number
  instructionsPerRequest: number
}

export function valgrindInstalled (): boolean {
  try {
    execFileSync('valgrind', ['--version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** One registration over the shared keep-alive agent; rejects unless it is a 201. */
async function registerOnce (url: string, agent: Agent, userId: string): Promise<void> {
  const body = JSON.stringify({ userId, tickers: ['AAPL', 'MSFT', 'NVDA'] })
  await new Promise<void>((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.resume()
      res.on('error', reject)
      res.on('end', () => { if (res.statusCode === 201) resolve(); else reject(new Error(`${url}: status ${res.statusCode}`)) })
    })
    // Generous: a registration under valgrind takes milliseconds, not seconds.
    req.setTimeout(30_000, () => req.destroy(new Error(`${url}: no answer within 30 s`)))
    req.on('error', reject)
    req.end(body)
  })
}

/**
 * `niceness`: 10 by default, so a long count does not take the two cores from whatever runs
 * beside it. The CI smoke passes 0: beside two busy test files a niced valgrind gets little
 * CPU, and Node's start under valgrind is slow enough already (see the wait below).
 */
export async function countInstructions (target: InstructionTarget, warm: number, requests: number, niceness = 10): Promise<InstructionResult> {
  const port = await freePort()
  const workDir = mkdtempSync(path.join(tmpdir(), 'tickstream-callgrind-'))
  const outFile = path.join(workDir, 'callgrind.out')
  // vgdb (behind callgrind_control) names its pipes after HOST; both sides must agree.
  const env = { ...process.env, HOST: '127.0.0.1', PORT: String(port), FEED: 'none', RATE_LIMIT_MAX: '0', SHED_EVENT_LOOP_DELAY_MS: '0', LOG_LEVEL: 'warn', NODE_OPTIONS: '' }
  // The count does not depend on the priority; see `niceness` above.
  const child = spawn('nice', ['-n', String(niceness), 'valgrind', '--tool=callgrind', '--smc-check=all-non-file', `--callgrind-out-file=${outFile}`,
    process.execPath, '--single-threaded', path.join(REPO_ROOT, target.script)], { cwd: REPO_ROOT, env, stdio: 'ignore' })
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve())
    child.once('error', () => resolve())
  })
  const base = `http://127.0.0.1:${port}`
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  try {
    // Node starts slowly under valgrind: 64-73 s for two at once on an idle machine here, and
    // more than 150 s in CI beside two test files that run servers of their own.
    await waitUntilServing(`${base}/health`, child, 360_000)
    let user = 0
    const run = async (count: number): Promise<void> => {
      for (let i = 0; i < count; i++) await registerOnce(`${base}${target.path}`, agent, `user-${user++ % 200}`)
    }
    await run(warm)
    await callgrindControl('-z', child.pid ?? 0, base, env)
    await run(requests)
    await callgrindControl('-d', child.pid ?? 0, base, env)
    const dump = readdirSync(workDir).find((file) => file.startsWith('callgrind.out.'))
    if (dump === undefined) throw new Error(`${target.name}: callgrind wrote no dump`)
    const total = Number(/^summary: (\d+)$/m.exec(readFileSync(path.join(workDir, dump), 'utf8'))?.[1])
    if (!(total > 0)) throw new Error(`${target.name}: no instruction total in the dump`)
    return { target: target.name, requests, instructionsPerRequest: total / requests }
  } finally {
    agent.destroy()
    // SIGTERM lets valgrind remove its vgdb pipes; SIGKILL only if the server does not exit.
    const stillRunning = child.exitCode === null && child.signalCode === null
    if (stillRunning) child.kill('SIGTERM')
    const forceKill = setTimeout(() => child.kill('SIGKILL'), 30_000)
    await exited
    clearTimeout(forceKill)
    rmSync(workDir, { recursive: true, force: true })
  }
}

/**
 * `callgrind_control` is answered only while the server runs code, and an idle server sits in
 * epoll: keep poking it with a health check until the command went through.
 */
async function callgrindControl (flag: '-z' | '-d', pid: number, base: string, env: NodeJS.ProcessEnv): Promise<void> {
  let outcome: Error | null | undefined
  execFile('callgrind_control', [flag, String(pid)], { env, timeout: 60_000 }, (err) => { outcome = err })
  while (outcome === undefined) {
    await delay(100)
    if (outcome === undefined) await fetch(`${base}/health`).catch(() => undefined)
  }
  if (outcome !== null) throw outcome
}

/** Two targets at a time: one per core. */
export async function runInstructions (targets: InstructionTarget[], warm: number, requests: number, niceness = 10): Promise<InstructionResult[]> {
  const results: InstructionResult[] = []
  for (let i = 0; i < targets.length; i += 2) {
    // Both settle before a failure is reported, so neither server is left running.
    const pair = await Promise.allSettled(targets.slice(i, i + 2).map(async (target) => await countInstructions(target, warm, requests, niceness)))
    for (const outcome of pair) {
      if (outcome.status === 'rejected') throw outcome.reason
      results.push(outcome.value)
    }
  }
  return results
}

/** The markdown table: each target's count, and its ratios against the first (the bare route). */
export function instructionsSummary (results: InstructionResult[], command: string): string {
  const baseline = results[0]?.instructionsPerRequest ?? Number.NaN
  const rows = results.map((r) => [r.target, r.requests, Math.round(r.instructionsPerRequest / 1000), (r.instructionsPerRequest / baseline).toFixed(2), (baseline / r.instructionsPerRequest).toFixed(2)])
  return `# Instructions per registration\n\n\`${command}\`\n\n` +
    markdownTable(['target', 'counted', 'k instructions / registration', 'cost vs bare route', 'bare route / cost (throughput-equivalent)'], rows) + '\n'
}

async function main (): Promise<void> {
  if (!valgrindInstalled()) throw new Error('valgrind is not installed (Debian package valgrind)')
  const args = parseArgs(process.argv.slice(2))
  const warm = Number(args.get('warm') ?? '1500')
  const requests = Number(args.get('requests') ?? '1000')
  if (!Number.isInteger(warm) || warm < 0 || !Number.isInteger(requests) || requests < 1) throw new Error('--warm must be an integer >= 0 and --requests an integer >= 1')
  const results = await runInstructions(INSTRUCTION_TARGETS, warm, requests)
  const command = `npm run load:instructions -- --warm ${warm} --requests ${requests}`
  const markdown = instructionsSummary(results, command)
  const files = writeReport('instructions', results, markdown, [])
  process.stdout.write(`${markdown}\nwritten: ${files.json}, ${files.markdown}\n`)
}

runAsScript(import.meta.filename, main)
