import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import { normalizeTickerList } from '../src/price.js'
import type { SessionView } from '../src/sessions/session.js'
import { ErrorBody, HttpError, notFound, unavailable } from './http-error.js'
import { RegisterBody, RegisteredSessionBody, SessionBody, SessionIdParams } from './schemas.js'

const REGISTER_BODY_LIMIT = 16 * 1024

function iso (epochMs: number): string {
  return new Date(epochMs).toISOString()
}

function publicSession (view: SessionView): { sessionId: string, userId: string, tickers: string[], createdAt: string, expiresAt: string } {
  return { sessionId: view.sessionId, userId: view.userId, tickers: view.tickers, createdAt: iso(view.createdAt), expiresAt: iso(view.expiresAt) }
}

/** Only `application/json` (any parameters) is a session body; anything else, or none, is a 415. */
async function requireJson (request: FastifyRequest): Promise<void> {
  const mediaType = (request.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase()
  if (mediaType !== 'application/json') {
    throw new HttpError(415, 'Content-Type must be application/json')
  }
}

const sessionsRoutes: FastifyPluginAsyncTypebox = async function sessionsRoutes (fastify) {
  const { sessions, config, bus } = fastify

  fastify.post('/sessions', {
    bodyLimit: REGISTER_BODY_LIMIT,
    onRequest: requireJson,
    schema: {
      body: RegisterBody,
      response: { 201: RegisteredSessionBody, '4xx': ErrorBody, '5xx': ErrorBody }
    }
  }, async (request, reply) => {
    // Redis mode, Redis unreachable: a session could not get prices, so refuse it clearly.
    if (!bus.isReady) throw unavailable('price bus not ready')
    const tickers = normalizeTickerList(request.body.tickers, config.maxTickersPerSession)
    if (!tickers.ok) throw new HttpError(400, `body/${tickers.message}`)
    const result = sessions.register(request.body.userId, tickers.tickers)
    if (!result.ok) throw unavailable('shutting down')
    request.log.debug({ sessionId: result.session.sessionId.slice(0, 8), evicted: result.evicted.length }, 'session registered')
    return await reply.code(201).send({
      ...publicSession(result.session),
      streamUrl: `/sessions/${result.session.sessionId}/stream`,
      evicted: result.evicted
    })
  })

  fastify.get('/sessions/:id', {
    schema: {
      params: SessionIdParams,
      response: { 200: SessionBody, '4xx': ErrorBody }
    }
  }, async (request) => {
    const view = sessions.view(request.params.id)
    if (view === undefined) throw notFound('session')
    return { ...publicSession(view), state: view.state }
  })

  fastify.delete('/sessions/:id', {
    schema: {
      params: SessionIdParams,
      response: { 204: Type.Null(), '4xx': ErrorBody }
    }
  }, async (request, reply) => {
    if (!sessions.deactivate(request.params.id, 'deleted')) throw notFound('session')
    return await reply.code(204).send(null)
  })
}

export default sessionsRoutes
