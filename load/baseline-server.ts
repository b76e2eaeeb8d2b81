import Fastify from 'fastify'
import { silentLogger } from '../src/logger.js'
import { RegisterBody, RegisteredSessionBody } from '../routes/schemas.js'
import { bareRegistration } from './lib/bare-registration.js'
import { serveUntilSigterm } from './lib/serve.js'
import { tuneGcAsTheServerDoes } from './lib/gc.js'

/**
 * The registration baseline: a bare Fastify route with the same body schema and the same
 * response shape as `POST /sessions`, and none of the service behind it (no registry, no
 * bus, no rate limit, no auth). The gap to it is what tickstream's own work costs.
 */
tuneGcAsTheServerDoes()
const app = Fastify({ logger: false, bodyLimit: 16 * 1024, ajv: { customOptions: { coerceTypes: false, removeAdditional: false } } })

app.get('/health', async () => ({ status: 'ok' }))

app.post('/sessions', { schema: { body: RegisterBody, response: { 201: RegisteredSessionBody } } }, bareRegistration)

// A shortfall of accept descriptors is printed: a baseline with fewer than tickstream is not a fair one.
const warnOnStderr = (context: object | string, message?: string): void => { process.stderr.write(`baseline-server: ${message ?? String(context)} ${JSON.stringify(context)}\n`) }
await serveUntilSigterm(app, { host: process.env.HOST ?? '127.0.0.1', port: Number(process.env.PORT ?? 0) }, { ...silentLogger, warn: warnOnStderr, error: warnOnStderr })
