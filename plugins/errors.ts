import fp from 'fastify-plugin'
import { HttpError, reasonPhrase } from '../routes/http-error.js'

interface ErrorWithStatus {
  statusCode?: unknown
  code?: unknown
  message?: unknown
}

/**
 * One error shape for every response: Fastify's `{ statusCode, error, message }`. A 4xx says
 * what is wrong; a 5xx says only "Internal Server Error" and the full error goes to the log
 * with its stack and the request id.
 */
export default fp(async function errorsPlugin (fastify) {
  fastify.setErrorHandler(function handleError (error: ErrorWithStatus & Error, request, reply) {
    const status = typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 600
      ? error.statusCode
      : 500
    if (status >= 500 && !(error instanceof HttpError)) {
      request.log.error({ err: error }, 'request failed')
      return reply.code(500).send({ statusCode: 500, error: reasonPhrase(500), message: 'Internal Server Error' })
    }
    if (error instanceof HttpError) void reply.headers(error.headers)
    const body: Record<string, unknown> = { statusCode: status, error: reasonPhrase(status), message: String(error.message) }
    if (typeof error.code === 'string' && error.code.startsWith('FST_')) body.code = error.code
    return reply.code(status).send(body)
  })

  fastify.setNotFoundHandler(function handleNotFound (request, reply) {
    return reply.code(404).send({ statusCode: 404, error: reasonPhrase(404), message: `Route ${request.method} not found` })
  })
}, { name: 'tickstream-errors', fastify: '5.x' })
