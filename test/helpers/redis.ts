import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { Redis, type RedisOptions } from 'ioredis'
import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import { freePort } from '../../load/lib/process.js'

/** The shared Redis that CI provides (reused when it answers, started by .ci/run otherwise). */
export const SHARED_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'

/**
 * A ticker no other test (or test file running in parallel) uses, so channel counts on the
 * shared Redis can be asserted exactly.
 */
export function uniqueTicker (prefix = 'T'): string {
  return `${prefix}${randomBytes(4).toString('hex').toUpperCase()}`.slice(0, 15)
}

/**
 * A plain client for the test's own commands (PUBSUB, PUBLISH, HGET), or with `options` a
 * connection for the code under test; closed at teardown.
 */
export function redisClient (t: Test, url = SHARED_REDIS_URL, options: RedisOptions = {}): Redis {
  const client = new Redis(url, { maxRetriesPerRequest: 1, ...options })
  client.on('error', () => {})
  t.teardown(async () => { await client.quit().catch(() => client.disconnect()) })
  return client
}

/** How many subscribers each channel has, as Redis counts them. */
export async function numsub (client: Redis, channels: string[]): Promise<Map<string, number>> {
  const reply = await client.call('PUBSUB', 'NUMSUB', ...channels) as Array<string | number>
  const counts = new Map<string, number>()
  for (let i = 0; i < reply.length; i += 2) counts.set(String(reply[i]), Number(reply[i + 1]))
  return counts
}

export interface OwnRedis {
  url: string
  port: number
  stop: () => Promise<void>
  start: () => Promise<void>
}

/**
 * A redis-server of the test's own on a spare port, for tests that stop and restart Redis.
 * The shared one is never stopped. Killed at teardown.
 */
export async function ownRedisServer (t: Test): Promise<OwnRedis> {
  const port = await freePort()
  let child: ChildProcess | undefined
  const start = async (): Promise<void> => {
    const started = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'inherit'] })
    child = started
    let output = ''
    await new Promise<void>((resolve, reject) => {
      started.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
        output += chunk
        if (output.includes('Ready to accept connections')) resolve()
      })
      started.once('exit', (code) => reject(new Error(`redis-server exited (${code}): ${output}`)))
    })
  }
  const stop = async (): Promise<void> => {
    const running = child
    if (running === undefined || running.exitCode !== null) return
    const exited = once(running, 'exit')
    running.kill('SIGKILL')
    await exited
    child = undefined
  }
  await start()
  t.teardown(stop)
  return { url: `redis://127.0.0.1:${port}`, port, stop, start }
}

/** Resolves once both of the app's Redis connections are ready (its 'ready' events, no polling). */
export async function redisReady (app: FastifyInstance): Promise<void> {
  const clients = app.redis
  if (clients === undefined) throw new Error('the app is not in Redis mode')
  for (const client of [clients.commands, clients.subscriber]) {
    if (client.status === 'ready') continue
    // A plain listener: once() would reject on the connection errors ioredis emits meanwhile.
    await new Promise<void>((resolve) => client.once('ready', () => resolve()))
  }
}
