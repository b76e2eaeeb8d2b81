import { fork } from 'node:child_process'
import { once } from 'node:events'
import net from 'node:net'
import path from 'node:path'
import { DEFAULT_ACCEPT_DESCRIPTORS } from '../src/config.js'
import type { AcceptServerListening } from './accept-server.js'
import { percentile, REPO_ROOT, sampleProcess } from './lib/process.js'
import { markdownTable, npmRunCommand, parseArgs, runAsScript, writeReport } from './lib/report.js'

/**
 * `npm run load:accept-cost`: what the extra accept descriptors (src/extra-acceptors.ts) cost
 * a server that is NOT busy. Every descriptor of the listening socket is woken for each new
 * connection; one accept() wins and the others fail with EAGAIN. On a busy server each of them
 * accepts a queued connection instead (the reason they exist), so the cost is paid when there
 * is CPU to spare; this run measures how large it is there.
 *
 * Each round forks a plain HTTP server (load/accept-server.ts) twice, with no extra descriptor
 * and with `--extra` of them, the order reversed every round, and opens new connections to it
 * (one request each, `Connection: close`) from `--concurrency` loops. Reported: the server's
 * CPU time (from /proc) per connection, and its ratio between the two.
 *
 *   --extra N (63: ACCEPT_DESCRIPTORS' default less the server's own)  --concurrency C (4)  --seconds S (3)  --warmup S (1)  --rounds R (3)
 */

export interface AcceptCostOptions {
  extra: number
  concurrency: number
  seconds: number
  warmupSeconds: number
  rounds: number
}

export interface AcceptCostMeasurement {
  /** Descriptors the socket had: the server's own plus the extra ones it got. */
  descriptors: number
  connections: number
  failed: number
  connectionsPerSecond: number
  cpuMicrosPerConnection: number
}

export interface AcceptCostRound {
  /** One descriptor first, then the extra ones; reversed every other round. */
  measurements: AcceptCostMeasurement[]
  /** CPU per connection with the extra descriptors ÷ with the server's own only. */
  cpuRatio: number
}

export interface AcceptCostResult {
  options: AcceptCostOptions
  rounds: AcceptCostRound[]
  medianCpuRatio: number
}

const REQUEST = 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n'
const CONNECTION_TIMEOUT_MS = 10_000

export async function runAcceptCost (options: AcceptCostOptions): Promise<AcceptCostResult> {
  const rounds: AcceptCostRound[] = []
  for (let round = 0; round < options.rounds; round++) {
    const order = round % 2 === 0 ? [0, options.extra] : [options.extra, 0]
    const measurements: AcceptCostMeasurement[] = []
    for (const extra of order) measurements.push(await measure(extra, options))
    const [single, multiple] = [0, options.extra].map((extra) => measurements[order.indexOf(extra)]) as [AcceptCostMeasurement, AcceptCostMeasurement]
    rounds.push({ measurements: [single, multiple], cpuRatio: multiple.cpuMicrosPerConnection / single.cpuMicrosPerConnection })
  }
  const ratios = rounds.map((round) => round.cpuRatio).sort((a, b) => a - b)
  return { options, rounds, medianCpuRatio: percentile(ratios, 50) }
}

async function measure (extra: number, options: AcceptCostOptions): Promise<AcceptCostMeasurement> {
  // Without NODE_OPTIONS: a loader or coverage hooks of the caller's would be measured too.
  const child = fork(path.join(REPO_ROOT, 'dist/load/accept-server.js'), [String(extra)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [], env: { ...process.env, NODE_OPTIONS: '' } })
  const exited = once(child, 'exit')
  try {
    const listening = await Promise.race([
      once(child, 'message').then(([message]) => message as AcceptServerListening),
      exited.then(() => { throw new Error(`accept server (${extra} extra descriptors) exited before listening`) })
    ])
    await openConnections(listening.port, options.concurrency, options.warmupSeconds * 1000)
    const before = sampleProcess(child.pid ?? 0)
    const startedAt = performance.now()
    const { answered, failed } = await openConnections(listening.port, options.concurrency, options.seconds * 1000)
    const elapsedSeconds = (performance.now() - startedAt) / 1000
    const cpuMicros = sampleProcess(child.pid ?? 0).cpuMicros - before.cpuMicros
    return {
      descriptors: 1 + listening.extraAcceptors,
      connections: answered,
      failed,
      connectionsPerSecond: answered / elapsedSeconds,
      cpuMicrosPerConnection: cpuMicros / Math.max(1, answered)
    }
  } finally {
    // It leaves when its IPC channel closes; one that already died has nothing to close.
    if (child.connected) child.disconnect()
    await exited
  }
}

/** `concurrency` loops, each opening one connection after another until `durationMs` is over. */
async function openConnections (port: number, concurrency: number, durationMs: number): Promise<{ answered: number, failed: number }> {
  const until = performance.now() + durationMs
  const counts = { answered: 0, failed: 0 }
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < until) {
      if (await requestOnNewConnection(port)) counts.answered++
      else counts.failed++
    }
  }))
  return counts
}

/** True when the server answered 200 and closed the connection. */
async function requestOnNewConnection (port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    let answered = false
    const socket = net.connect({ host: '127.0.0.1', port, noDelay: true })
    socket.setTimeout(CONNECTION_TIMEOUT_MS, () => socket.destroy())
    socket.once('connect', () => socket.write(REQUEST))
    socket.once('data', (chunk) => { answered = chunk.toString('latin1').startsWith('HTTP/1.1 200') })
    socket.on('error', () => { answered = false })
    socket.once('close', () => resolve(answered))
    socket.resume()
  })
}

export function acceptCostMarkdown (result: AcceptCostResult, command: string): string {
  // Counts as text: the table's number format would print them with decimals.
  const rows = result.rounds.flatMap((round, index) => round.measurements.map((m) => [
    String(index + 1), String(m.descriptors), String(m.connections), String(m.failed), m.connectionsPerSecond, m.cpuMicrosPerConnection
  ]))
  return [
    '# Accept cost: new connections to a server that is not busy',
    '',
    `\`${command}\``,
    '',
    markdownTable(['round', 'descriptors', 'connections', 'failed', 'connections/s', 'server CPU µs/connection'], rows),
    '',
    `CPU per connection, ${1 + result.options.extra} descriptors ÷ 1, by round: ${result.rounds.map((round) => `${round.cpuRatio.toFixed(2)}x`).join(', ')} (median ${result.medianCpuRatio.toFixed(2)}x)`,
    ''
  ].join('\n')
}

async function main (): Promise<void> {
  const args = parseArgs(process.argv.slice(2))
  const options: AcceptCostOptions = {
    extra: Number(args.get('extra') ?? DEFAULT_ACCEPT_DESCRIPTORS - 1),
    concurrency: Number(args.get('concurrency') ?? 4),
    seconds: Number(args.get('seconds') ?? 3),
    warmupSeconds: Number(args.get('warmup') ?? 1),
    rounds: Number(args.get('rounds') ?? 3)
  }
  const result = await runAcceptCost(options)
  const command = npmRunCommand('load:accept-cost', process.argv.slice(2))
  const markdown = acceptCostMarkdown(result, command)
  const written = writeReport('accept-cost', result, markdown, [])
  process.stdout.write(`${markdown}\nwritten: ${written.json}, ${written.markdown}\n`)
}

runAsScript(import.meta.filename, main)
