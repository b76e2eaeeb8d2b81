import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { startPublisher, TICKSTREAM_TARGET, tickersOf, type FanoutOptions } from './fanout.js'
import { delay, type Server } from './lib/process.js'
import { markdownTable, parseArgs, runAsScript, writeReport } from './lib/report.js'
import { SseClientPool } from './lib/sse-clients.js'

/**
 * `npm run load:memory`: where the memory of an open stream goes. Opens N streams (the
 * fan-out workload, prices flowing) against a tickstream server and takes a V8 heap snapshot
 * before and after; the difference, grouped by constructor and divided by N, is the heap each
 * stream costs. RSS is not reported here: writing a snapshot swells it by far more than the
 * streams do. `load:fanout` measures RSS per stream without snapshots.
 *
 *   --streams N (3000)  --seconds S (5)  --top K (25)
 */

interface HeapCensus {
  totalBytes: number
  /** Bytes and object count per constructor (or `(string)`, `(closure)`... for non-objects). */
  byKind: Map<string, { bytes: number, count: number }>
}


export interface MemoryResult {
  streams: number
  opened: number
  heapPerStreamBytes: number
  perStream: Array<{ kind: string, bytesPerStream: number, countPerStream: number }>
}

/** Sums self sizes per kind from a `.heapsnapshot` file (the V8 JSON format). */
export function censusOf (file: string): HeapCensus {
  const snapshot = JSON.parse(readFileSync(file, 'utf8')) as {
    snapshot: { meta: { node_fields: string[], node_types: [string[], ...unknown[]] } }
    nodes: number[]
    strings: string[]
  }
  const fields = snapshot.snapshot.meta.node_fields
  const typeNames = snapshot.snapshot.meta.node_types[0]
  const [typeAt, nameAt, sizeAt] = [fields.indexOf('type'), fields.indexOf('name'), fields.indexOf('self_size')]
  const byKind = new Map<string, { bytes: number, count: number }>()
  let totalBytes = 0
  for (let offset = 0; offset < snapshot.nodes.length; offset += fields.length) {
    const type = typeNames[snapshot.nodes[offset + typeAt] ?? 0] ?? '?'
    const size = snapshot.nodes[offset + sizeAt] ?? 0
    const name = snapshot.strings[snapshot.nodes[offset + nameAt] ?? 0] ?? '?'
    const kind = type === 'object' || type === 'native' ? name : (type === 'closure' || type === 'array' || type === 'hidden') ? `(${type}) ${name.slice(0, 40)}` : `(${type})`
    const entry = byKind.get(kind) ?? { bytes: 0, count: 0 }
    entry.bytes += size
    entry.count++
    byKind.set(kind, entry)
    totalBytes += size
  }
  return { totalBytes, byKind }
}

/** Signals the server to write a heap snapshot (it forces a full GC first). SIGWINCH, because
 * the server shuts down gracefully on SIGUSR2 (close-with-grace) and waits for it. */
async function takeSnapshot (server: Server, dir: string): Promise<HeapCensus> {
  const before = new Set(readdirSync(dir))
  process.kill(server.child.pid ?? 0, 'SIGWINCH')
  let file: string | undefined
  for (let attempt = 0; attempt < 600 && file === undefined; attempt++) {
    await delay(100)
    file = readdirSync(dir).find((name) => name.endsWith('.heapsnapshot') && !before.has(name))
  }
  if (file === undefined) throw new Error('the server wrote no heap snapshot within 60 s')
  // The snapshot is written on the server's main thread: once it answers again, the file is whole.
  await fetch(`${server.url}/health`)
  let size = -1
  while (size !== statSync(path.join(dir, file)).size) {
    size = statSync(path.join(dir, file)).size
    await delay(200)
  }
  const census = censusOf(path.join(dir, file))
  rmSync(path.join(dir, file))
  return census
}

export async function runMemory (streams: number, seconds: number): Promise<MemoryResult> {
  const dir = mkdtempSync(path.join(tmpdir(), 'tickstream-heap-'))
  const server = await TICKSTREAM_TARGET.start(['--heapsnapshot-signal=SIGWINCH', `--diagnostic-dir=${dir}`])
  const url = new URL(server.url)
  const pool = new SseClientPool(url.hostname, Number(url.port))
  const options: FanoutOptions = { streams, tickersPerStream: 5, universe: 50, rate: 50, warmupSeconds: seconds, measureSeconds: 0 }
  const publisher = startPublisher(TICKSTREAM_TARGET, server, options)
  try {
    // A warm-up round opens and drops a tenth of the streams so that code, caches and pools
    // that exist once per process are there before the first snapshot.
    const warmup = new SseClientPool(url.hostname, Number(url.port))
    await openStreams(server, warmup, Math.ceil(streams / 10), options, streams)
    await delay(seconds * 1000)
    warmup.closeAll()
    await delay(1000)
    const idle = await takeSnapshot(server, dir)
    await openStreams(server, pool, streams, options, 0)
    await delay(seconds * 1000)
    const loaded = await takeSnapshot(server, dir)
    return summarize(idle, loaded, streams, pool.stats.opened)
  } finally {
    clearInterval(publisher)
    pool.closeAll()
    await server.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

async function openStreams (server: Server, pool: SseClientPool, count: number, options: FanoutOptions, firstIndex: number): Promise<void> {
  for (let start = 0; start < count; start += 200) {
    const indexes = Array.from({ length: Math.min(200, count - start) }, (_, i) => firstIndex + start + i)
    await Promise.all(indexes.map(async (index) => {
      await pool.open(await TICKSTREAM_TARGET.streamPath(server, tickersOf(index, options), index))
    }))
  }
}

function summarize (idle: HeapCensus, loaded: HeapCensus, streams: number, opened: number): MemoryResult {
  const kinds = new Set([...idle.byKind.keys(), ...loaded.byKind.keys()])
  const perStream = [...kinds].map((kind) => {
    const [before, after] = [idle.byKind.get(kind), loaded.byKind.get(kind)]
    return {
      kind,
      bytesPerStream: ((after?.bytes ?? 0) - (before?.bytes ?? 0)) / streams,
      countPerStream: ((after?.count ?? 0) - (before?.count ?? 0)) / streams
    }
  }).sort((a, b) => b.bytesPerStream - a.bytesPerStream)
  return { streams, opened, heapPerStreamBytes: (loaded.totalBytes - idle.totalBytes) / streams, perStream }
}

function summary (result: MemoryResult, top: number, command: string): string {
  const rows = result.perStream.slice(0, top).map((row) => [row.kind, row.bytesPerStream, row.countPerStream])
  return `# Memory per open stream: ${result.streams} streams (${result.opened} opened)\n\n\`${command}\`\n\n` +
    `V8 heap of live objects per open stream: ${Math.round(result.heapPerStreamBytes)} bytes (after a full GC).\n\n` +
    'Largest growth per stream, by constructor:\n\n' +
    markdownTable(['kind', 'bytes per stream', 'objects per stream'], rows) + '\n'
}

async function main (): Promise<void> {
  const args = parseArgs(process.argv.slice(2))
  const streams = Number(args.get('streams') ?? 3000)
  const seconds = Number(args.get('seconds') ?? 5)
  const top = Number(args.get('top') ?? 25)
  const result = await runMemory(streams, seconds)
  const text = summary(result, top, `npm run load:memory -- --streams ${streams} --seconds ${seconds}`)
  const files = writeReport('memory', result, text, [])
  process.stdout.write(`${text}\nwritten: ${files.json}, ${files.markdown}\n`)
}

runAsScript(import.meta.filename, main)
