import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import { isLevelEnabled } from '../src/logger.js'
import { normalizeTickerList } from '../src/price.js'
import type { SessionView } from '../src/sessions/session.js'
import { ErrorBody, HttpError, notFound, unavailable } from './http-error.js'
import { shedUnderPressure } from '../plugins/load-shedding.js'
import { AuthenticatedRegisterBody, RegisterBody, RegisteredSessionBody, SessionBody, SessionIdParams } from './schemas.js'

const REGISTER_BODY_LIMIT = 16 * 1024

/**
 * `toISOString` for one kind of timestamp, remembering the last one. Sessions registered in
 * the same millisecond share their `createdAt` (and so their `expiresAt`): under a
 * registration burst most calls are a comparison instead of a `Date` and its formatting,
 * which was 2.4 % of the route's CPU (BENCHMARKS.md).
 */
function lastIsoString (): (epochMs: number) => string {
  let lastMs = Number.NaN
  let lastIso = ''
  return (epochMs) => {
    if (epochMs !== lastMs) {
      lastIso = new Date(epochMs).toISOString()
      lastMs = epochMs
    }
    return lastIso
  }
}

// One per field: a single shared memo would alternate between createdAt and expiresAt.
const createdAtIso = lastIsoString()
const expiresAtIso = lastIsoString()

interface PublicSession { sessionId: string, userId: string, tickers: string[], createdAt: string, expiresAt: string }

/**
 * The response bodies are built as whole object literals, never as `{ ...publicSession(view),
 * more }`: on Node 20 that spread plus added keys cost about 20 us per registration under
 * load, a quarter of the route (BENCHMARKS.md, "The object spread").
 */
function registeredSession (view: SessionView, evicted: string[]): PublicSession & { streamUrl: string, evicted: string[] } {
  return {
    sessionId: view.sessionId,
    userId: view.userId,
    tickers: view.tickers,
    createdAt: createdAtIso(view.createdAt),
    expiresAt: expiresAtIso(view.expiresAt),
    streamUrl: `/sessions/${view.sessionId}/stream`,
    evicted
  }
}

function sessionWithState (view: SessionView): PublicSession & { state: SessionView['state'] } {
  return {
    sessionId: view.sessionId,
    userId: view.userId,
    tickers: view.tickers,
    createdAt: createdAtIso(view.createdAt),
    expiresAt: expiresAtIso(view.expiresAt),
    state: view.state
  }
}

/** Only `application/json` (any parameters) is a session body; anything else, or none, is a 415. */
function isJson (request: FastifyRequest): boolean {
  const contentType = request.headers['content-type']
  if (contentType === 'application/json') return true
  return (contentType ?? '').split(';')[0]?.trim().toLowerCase() === 'application/json'
}

/** Open mode: the body names the user. Auth mode: the token does, and the body may only agree. */
function resolveUser (authenticatedUser: string | undefined, bodyUserId: string | undefined): string {
  if (authenticatedUser === undefined) {
    /* c8 ignore next -- the open-mode schema requires userId; this guards the types */
    if (bodyUserId === undefined) throw new HttpError(400, "body must have required property 'userId'")
    return bodyUserId
  }
  if (bodyUserId !== undefined && bodyUserId !== authenticatedUser) {
    throw new HttpError(403, 'userId does not match the authenticated user')
  }
  return authenticatedUser
}

const sessionsRoutes: FastifyPluginAsyncTypebox = async function sessionsRoutes (fastify) {
  const { sessions, config, bus, authenticateUser, metricsObservers } = fastify
  const authRequired = config.jwtSecret !== undefined

  /** The session's user when the caller may see it; otherwise it does not exist for them. */
  function ownedView (request: FastifyRequest, sessionId: string): SessionView {
    const view = sessions.view(sessionId)
    // Another user's session is a 404 too: its existence is not revealed.
    if (view === undefined || (authRequired && view.userId !== request.authenticatedUser)) throw notFound('session')
    return view
  }

  // DELETE takes no body, but a client that sends `content-type: application/json` on every
  // request sends it with an empty one: that is no body, not Fastify's 400 for an empty JSON
  // body. Anything else, POST /sessions' empty body included, parses as before.
  const parseJson = fastify.getDefaultJsonParser(fastify.initialConfig.onProtoPoisoning ?? 'error', fastify.initialConfig.onConstructorPoisoning ?? 'error')
  fastify.removeContentTypeParser('application/json')
  fastify.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body: string, done) => {
    if (body === '' && request.method === 'DELETE') done(null, undefined)
    else parseJson(request, body, done)
  })

  fastify.post('/sessions', {
    bodyLimit: REGISTER_BODY_LIMIT,
    // Not onRequest: the rate limiter's onRequest hook must see every request first (a 401
    // or a 415 counts too), and the body is never parsed for a refused request. One hook in
    // callback style, not two async ones: this is the hottest route (registration load run),
    // and it has no onResponse hook either (see the duration below).
    preParsing: (request, _reply, payload, done) => {
      if (!isJson(request)) {
        done(new HttpError(415, 'Content-Type must be application/json'))
        return
      }
      if (!authRequired) {
        done(null, payload)
        return
      }
      authenticateUser(request).then(() => done(null, payload), done)
    },
    config: { rateLimit: { max: config.rateLimitMax, timeWindow: config.rateLimitWindowMs }, ...shedUnderPressure },
    schema: {
      body: authRequired ? AuthenticatedRegisterBody : RegisterBody,
      response: { 201: RegisteredSessionBody, '4xx': ErrorBody, '5xx': ErrorBody }
    }
  }, async (request, reply) => {
    const userId = resolveUser(request.authenticatedUser, request.body.userId)
    // Redis mode, Redis unreachable: a session could not get prices, so refuse it clearly.
    if (!bus.isReady) throw unavailable('price bus not ready')
    const tickers = normalizeTickerList(request.body.tickers, config.maxTickersPerSession)
    if (!tickers.ok) throw new HttpError(400, `body/${tickers.message}`)
    const result = sessions.register(userId, tickers.tickers)
    if (!result.ok) throw unavailable('shutting down')
    if (isLevelEnabled(request.log, 'debug')) request.log.debug({ sessionId: result.session.sessionId.slice(0, 8), evicted: result.evicted.length }, 'session registered')
    await reply.code(201).send(registeredSession(result.session, result.evicted))
    // Observed here, once the 201 is serialized and handed to the socket, rather than in an
    // onResponse hook, which cost more than the histogram itself (BENCHMARKS.md).
    // A 201 whose body failed to serialize has become a 500 by now: not a registration.
    if (reply.statusCode === 201) metricsObservers.registrationSeconds(reply.elapsedTime / 1000)
    return reply
  })

  fastify.get('/sessions/:id', {
    onRequest: authenticateUser,
    schema: {
      params: SessionIdParams,
      response: { 200: SessionBody, '4xx': ErrorBody }
    }
  }, async (request) => {
    const view = ownedView(request, request.params.id)
    return sessionWithState(view)
  })

  fastify.delete('/sessions/:id', {
    onRequest: authenticateUser,
    schema: {
      params: SessionIdParams,
      response: { 204: Type.Null(), '4xx': ErrorBody }
    }
  }, async (request, reply) => {
    const view = ownedView(request, request.params.id)
    if (!sessions.deactivate(view.sessionId, 'deleted')) throw notFound('session')
    return await reply.code(204).send(null)
  })
}

export default sessionsRoutes
