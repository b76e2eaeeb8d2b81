import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import { toPriceUpdate, type PriceUpdate } from '../src/price.js'
import { ErrorBody, HttpError, unavailable } from './http-error.js'

const PRICES_BODY_LIMIT = 1024 * 1024
const MAX_PRICES_PER_REQUEST = 1000

// Shape only; each price's fields are checked by the core's `toPriceUpdate`, the same code
// that checks bus messages, so both paths accept and refuse the same prices. One exception:
// Fastify's JSON parser refuses a body with a `__proto__` or `constructor.prototype` key
// (prototype poisoning) before that, with a 400, where a bus message passes it through.
const PricesBody = Type.Union([
  Type.Object({}, { additionalProperties: true }),
  Type.Array(Type.Unknown(), { maxItems: MAX_PRICES_PER_REQUEST })
])

function digest (value: string): Buffer {
  return createHash('sha256').update(value).digest()
}

/** `Authorization: Bearer <PUBLISH_TOKEN>`, compared in constant time (hashes equalize lengths). */
function bearerTokenCheck (expectedToken: string): (request: FastifyRequest) => Promise<void> {
  const expected = digest(expectedToken)
  return async (request) => {
    const header = request.headers.authorization ?? ''
    const match = /^Bearer ([^\s]+)$/i.exec(header)
    if (match === null || !timingSafeEqual(digest(match[1] ?? ''), expected)) {
      throw new HttpError(401, 'a valid publish token is required', { 'www-authenticate': 'Bearer' })
    }
  }
}

/** `POST /prices`, only registered when PUBLISH_TOKEN is set (otherwise a 404). */
const pricesRoutes: FastifyPluginAsyncTypebox = async function pricesRoutes (fastify) {
  const { config, bus, clock } = fastify
  if (config.publishToken === undefined) return

  fastify.post('/prices', {
    bodyLimit: PRICES_BODY_LIMIT,
    onRequest: bearerTokenCheck(config.publishToken),
    schema: {
      body: PricesBody,
      response: { 202: Type.Object({ accepted: Type.Integer() }), '4xx': ErrorBody, '5xx': ErrorBody }
    }
  }, async (request, reply) => {
    const items: unknown[] = Array.isArray(request.body) ? request.body : [request.body]
    const receivedAt = clock()
    const updates: PriceUpdate[] = []
    // All or nothing: every price is validated before any is published.
    for (const [index, item] of items.entries()) {
      const result = toPriceUpdate(item, receivedAt)
      if (!result.ok) {
        const where = Array.isArray(request.body) ? `body/${index}` : 'body'
        throw new HttpError(400, `${where}: ${result.reason}`)
      }
      updates.push(result.update)
    }
    try {
      await bus.publish(updates)
    } catch (err) {
      request.log.warn({ err, prices: updates.length }, 'publishing to the price bus failed')
      throw unavailable('price bus unavailable')
    }
    return await reply.code(202).send({ accepted: updates.length })
  })
}

export default pricesRoutes
