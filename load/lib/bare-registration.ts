import { randomBytes } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'

/**
 * The registration baseline's handler: the response `POST /sessions` gives, built from the
 * body and nothing else (no registry, no bus, no eviction). Shared by the bare Fastify server
 * (load/baseline-server.ts) and the breakdown server (load/breakdown-server.ts).
 */
export async function bareRegistration (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const body = request.body as { userId: string, tickers: string[] }
  const sessionId = randomBytes(16).toString('base64url')
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
