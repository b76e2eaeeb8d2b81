import type { FastifyReply, FastifyRequest } from 'fastify'
import t from 'tap'
import { LevelCheckedLogController, serverOptions } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { silentLogger, type LevelName, type Logger } from '../../src/logger.js'

/**
 * Fastify's request lines through tickstream's log controller: built and written when `info`
 * is on, not even built when it is off, and a failed response logged whatever the level.
 * The request and reply are the two fields the controller reads (`log`, and what the lines
 * carry); a real server's lines are checked in test/logging.test.ts.
 */
function recorder (enabled: LevelName[]): { logger: Logger, lines: Array<{ level: string, obj: object, msg: string | undefined }> } {
  const lines: Array<{ level: string, obj: object, msg: string | undefined }> = []
  const at = (level: string) => (obj: object | string, msg?: string) => { lines.push({ level, obj: typeof obj === 'string' ? {} : obj, msg: typeof obj === 'string' ? obj : msg }) }
  return { logger: { ...silentLogger, info: at('info'), error: at('error'), isLevelEnabled: (level) => enabled.includes(level) }, lines }
}

function requestAndReply (logger: Logger): { request: FastifyRequest, reply: FastifyReply } {
  const request = { log: logger, id: 'req-1' } as unknown as FastifyRequest
  const reply = { log: logger, request, elapsedTime: 1.5, statusCode: 201 } as unknown as FastifyReply
  return { request, reply }
}

t.test('the service\'s server options use this controller', async (t) => {
  t.type(serverOptions(loadConfig({})).logController, LevelCheckedLogController)
})

t.test('with info off, neither request line is built; a failed response still is', async (t) => {
  const { logger, lines } = recorder(['warn', 'error'])
  const { request, reply } = requestAndReply(logger)
  const controller = new LevelCheckedLogController()
  controller.incomingRequest(request, reply)
  controller.requestCompleted(null, request, reply)
  controller.requestCompleted(undefined, request, reply)
  t.same(lines, [], 'no line')
  const failure = new Error('socket hang up')
  controller.requestCompleted(failure, request, reply)
  t.equal(lines.length, 1)
  t.match(lines[0], { level: 'error', obj: { err: failure, responseTime: 1.5 }, msg: 'request errored' })
})

t.test('with info on, both lines as Fastify writes them', async (t) => {
  const { logger, lines } = recorder(['info', 'warn', 'error'])
  const { request, reply } = requestAndReply(logger)
  const controller = new LevelCheckedLogController()
  controller.incomingRequest(request, reply)
  controller.requestCompleted(null, request, reply)
  t.equal(lines.length, 2)
  t.match(lines[0], { level: 'info', obj: { req: request }, msg: 'incoming request' })
  t.match(lines[1], { level: 'info', obj: { res: reply, responseTime: 1.5 }, msg: 'request completed' })
})
