import { STATUS_CODES } from 'node:http'
import { Type } from 'typebox'

/** An error a route throws on purpose; its message is safe to show the client. */
export class HttpError extends Error {
  constructor (readonly statusCode: number, message: string, readonly headers: Record<string, string> = {}) {
    super(message)
    this.name = 'HttpError'
  }
}

/** Fastify's error body shape: `{ statusCode, error, message }` (plus `code` when it has one). */
export const ErrorBody = Type.Object({
  statusCode: Type.Integer(),
  error: Type.String(),
  message: Type.String(),
  code: Type.Optional(Type.String())
})

export function reasonPhrase (statusCode: number): string {
  return STATUS_CODES[statusCode] ?? 'Error'
}

export const notFound = (what: string): HttpError => new HttpError(404, `${what} not found`)

export const unavailable = (why: string): HttpError => new HttpError(503, why, { 'retry-after': '5' })
