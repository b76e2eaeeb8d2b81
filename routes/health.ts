import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { ErrorBody, unavailable } from './http-error.js'

/** Liveness, readiness and Prometheus metrics. */
const healthRoutes: FastifyPluginAsyncTypebox = async function healthRoutes (fastify) {
  const { bus, sessions, metrics } = fastify

  fastify.get('/health', {
    schema: { response: { 200: Type.Object({ status: Type.Literal('ok') }) } }
  }, async () => ({ status: 'ok' as const }))

  fastify.get('/ready', {
    schema: { response: { 200: Type.Object({ status: Type.Literal('ready') }), 503: ErrorBody } }
  }, async () => {
    if (!sessions.isAccepting) throw unavailable('shutting down')
    if (!bus.isReady) throw unavailable('price bus not connected')
    return { status: 'ready' as const }
  })

  fastify.get('/metrics', async (_request, reply) => {
    const body = await metrics.metrics()
    return await reply.type(metrics.contentType).send(body)
  })
}

export default healthRoutes
