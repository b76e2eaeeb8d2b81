import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { OutgoingHttpHeaders } from 'node:http'
import { startSseResponse } from '../src/stream/sse-response.js'
import { shedUnderPressure } from '../plugins/load-shedding.js'
import { HttpError, notFound, unavailable } from './http-error.js'
import { SessionIdParams } from './schemas.js'

/**
 * `GET /sessions/:id/stream`: no token, the unguessable session id is the capability (an
 * EventSource cannot send headers). The registry decides, in one synchronous step, whether
 * this response may stream; only then is the reply hijacked and the SSE headers written.
 */
const streamRoutes: FastifyPluginAsyncTypebox = async function streamRoutes (fastify) {
  const { sessions } = fastify

  fastify.get('/sessions/:id/stream', {
    // A HEAD would run this handler and use the session up without ever streaming.
    exposeHeadRoute: false,
    config: shedUnderPressure,
    schema: { params: SessionIdParams }
  }, (request, reply) => {
    const result = sessions.openStream(request.params.id, () => {
      reply.hijack()
      // Headers set by hooks so far (request id, rate-limit headers) still go out.
      return startSseResponse(reply.raw, reply.getHeaders() as OutgoingHttpHeaders)
    })
    if (result.ok) {
      request.log.debug({ sessionId: request.params.id.slice(0, 8) }, 'stream opened')
      return
    }
    switch (result.error) {
      case 'not_found': throw notFound('session')
      case 'already_streaming': throw new HttpError(409, 'a stream is already open for this session')
      case 'shutting_down': throw unavailable('shutting down')
    }
  })
}

export default streamRoutes
