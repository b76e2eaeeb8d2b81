import type { FastifyReply, FastifyRequest } from 'fastify'
import { randomSessionId } from '../../src/sessions/session-registry.js'

/**
 * The registration baseline's handler: the response `POST /sessions` gives, built from the
 * body and nothing else (no registry, no bus, no eviction). Shared by the bare Fastify server
 * (load/baseline-server.ts) and the breakdown server (load/breakdown-server.ts).
 *
 * The id comes from the service's own generator: the id is part of the response shape, not of
 * the session work. (Until session 3 the baseline called `randomBytes(16)` per request: 3 % of
 * its instructions, more of its CPU time in profiles, which flattered tickstream's ratio.)
 */
export async function bareRegistration (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const body = request.body as { userId: string, tickers: string[] }
  const sessionId = randomSessionId()
  const now = Date.now()
  return await reply.code(201).send({
    sessionId,
    userId: body.userId,
    tickers: body.tickers.map((ticker) => ticker.trim().toUpperCase()),
    createdAt: new Date(now).toISOString(),
    expiresAt: new Date(now + 30_000).toISOString(),
    streamUrl: `/sessions/${sessionId}/stream`,
    evicted: []
  })
}
