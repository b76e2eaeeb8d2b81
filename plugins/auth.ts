import fastifyJwt from '@fastify/jwt'
import type { FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { HttpError } from '../routes/http-error.js'

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * onRequest hook of the session routes. With JWT_SECRET set it requires an HS256 bearer
     * token and sets `request.authenticatedUser` to its `sub`; without, it lets every request
     * through and leaves it undefined (open mode).
     */
    authenticateUser: (request: FastifyRequest) => Promise<void>
  }
  interface FastifyRequest {
    authenticatedUser: string | undefined
  }
}

const unauthorized = (message: string): HttpError => new HttpError(401, message, { 'www-authenticate': 'Bearer' })

/** Who may do what: the maintained @fastify/jwt verifies tokens; no hand-rolled crypto. */
export default fp(async function authPlugin (fastify) {
  const secret = fastify.config.jwtSecret
  fastify.decorateRequest('authenticatedUser', undefined)
  if (secret === undefined) {
    fastify.log.warn('JWT_SECRET unset: session routes are open, any client may act for any userId')
    fastify.decorate('authenticateUser', async function openMode () {})
    return
  }
  await fastify.register(fastifyJwt, { secret, verify: { algorithms: ['HS256'] } })
  fastify.decorate('authenticateUser', async function requireToken (request: FastifyRequest) {
    let payload: unknown
    try {
      payload = await request.jwtVerify()
    } catch (err) {
      // @fastify/jwt says what is wrong (missing, malformed, expired, bad signature); keep
      // its message, always as a 401.
      throw unauthorized(err instanceof Error ? err.message : 'invalid token')
    }
    const sub = typeof payload === 'object' && payload !== null ? (payload as { sub?: unknown }).sub : undefined
    if (typeof sub !== 'string' || sub === '') throw unauthorized('the token has no subject (sub)')
    request.authenticatedUser = sub
  })
}, { name: 'tickstream-auth', fastify: '5.x', dependencies: ['tickstream-config'] })
