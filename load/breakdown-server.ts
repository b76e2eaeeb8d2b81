import Fastify from 'fastify'
import tickstreamApp, { serverOptions } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { shedUnderPressure } from '../plugins/load-shedding.js'
import { ErrorBody, HttpError } from '../routes/http-error.js'
import { RegisterBody, RegisteredSessionBody } from '../routes/schemas.js'
import { bareRegistration } from './lib/bare-registration.js'
import { serveUntilSigterm } from './lib/serve.js'
import { tuneGcAsTheServerDoes } from './lib/gc.js'

/**
 * For `npm run load:registration -- --breakdown`: the whole tickstream app (every plugin and
 * global hook, its logger, its registry) plus `POST /sessions-bare`, a route with the same
 * options and hooks as `POST /sessions` but the baseline's handler, which registers nothing.
 * Against the bare Fastify server it shows what the plugins cost; against tickstream's own
 * route, what the session work costs.
 */
const config = loadConfig(process.env)
tuneGcAsTheServerDoes()
const app = Fastify(serverOptions(config))
await app.register(tickstreamApp, { config })
app.post('/sessions-bare', {
  bodyLimit: 16 * 1024,
  preParsing: (request, _reply, payload, done) => {
    if (request.headers['content-type'] === 'application/json') done(null, payload)
    else done(new HttpError(415, 'Content-Type must be application/json'))
  },
  config: shedUnderPressure,
  schema: { body: RegisterBody, response: { 201: RegisteredSessionBody, '4xx': ErrorBody, '5xx': ErrorBody } }
}, async (request, reply) => {
  await bareRegistration(request, reply)
  if (reply.statusCode === 201) app.metricsObservers.registrationSeconds(reply.elapsedTime / 1000)
  return reply
})
// Listens as src/server.ts does, so that the two differ only in the route's handler.
await serveUntilSigterm(app, { host: config.host, port: config.port }, app.log)
