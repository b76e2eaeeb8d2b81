import { setTimeout as sleep } from 'node:timers/promises'
import fp from 'fastify-plugin'

export interface DrainResult {
  sessionsEnded: number
  responsesCutOff: number
}

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * Graceful drain, before `close()`: refuse new sessions and streams (503, `/ready` 503),
     * end every stream with `event: end` {"reason":"shutdown"}, wait until their responses
     * have closed or `deadlineMs` has passed, then cut off whatever is left.
     */
    drain(deadlineMs: number): Promise<DrainResult>
  }
}

export default fp(async function shutdownPlugin (fastify) {
  let draining: Promise<DrainResult> | undefined
  // A signal's drain and the close() that follows it share one drain.
  fastify.decorate('drain', async function drain (deadlineMs: number): Promise<DrainResult> {
    draining ??= drainOnce(deadlineMs)
    return await draining
  })

  async function drainOnce (deadlineMs: number): Promise<DrainResult> {
    const sessionsEnded = fastify.sessions.shutdown()
    const deadline = new AbortController()
    await Promise.race([
      fastify.streams.whenResponsesClosed(),
      sleep(deadlineMs, undefined, { signal: deadline.signal }).catch(() => {})
    ])
    deadline.abort()
    const responsesCutOff = fastify.streams.destroyResponses()
    fastify.log.info({ sessionsEnded, responsesCutOff }, 'drained')
    return { sessionsEnded, responsesCutOff }
  }
  // app.close() without a drain first (tests, embedding) drains too, so the HTTP server
  // never waits on an open stream; after a drain this finds nothing left and returns at once.
  fastify.addHook('preClose', async () => {
    await fastify.drain(fastify.config.shutdownGraceMs)
  })
}, { name: 'tickstream-shutdown', fastify: '5.x', dependencies: ['tickstream-config', 'tickstream-sessions', 'tickstream-streams'] })
