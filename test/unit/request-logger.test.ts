import { Writable } from 'node:stream'
import { pino, type Logger } from 'pino'
import t from 'tap'
import { LazyRequestLogger, type LevelLogger } from '../../src/request-logger.js'

/** A real pino logger writing JSON lines into an array, and a count of the children made from it. */
function capturingLogger (level: string): { logger: Logger, lines: Array<Record<string, unknown>>, children: () => number } {
  const lines: Array<Record<string, unknown>> = []
  const destination = new Writable({
    write (chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString('utf8')) as Record<string, unknown>)
      done()
    }
  })
  const logger = pino({ level }, destination)
  let children = 0
  const child = logger.child
  // Children inherit this method through pino's prototype chain: call the original on `this`.
  logger.child = function (this: Logger, ...args: Parameters<Logger['child']>) {
    children++
    return child.apply(this, args)
  } as Logger['child']
  return { logger, lines, children: () => children }
}

/** pino writes to a stream: wait for the stream to have taken the line. */
async function settled (): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve))
}

t.test('a line at an enabled level goes through a real child and carries its bindings', async (t) => {
  const { logger, lines, children } = capturingLogger('info')
  const requestLogger = new LazyRequestLogger<Logger>(logger, { reqId: 'req-1' })
  requestLogger.info({ sessionId: 'abcd1234' }, 'session registered')
  requestLogger.warn('plain %s', 'message')
  await settled()
  t.equal(children(), 1, 'one child, made on the first line')
  t.match(lines, [
    { level: 30, reqId: 'req-1', sessionId: 'abcd1234', msg: 'session registered' },
    { level: 40, reqId: 'req-1', msg: 'plain message' }
  ])
})

t.test('lines below the level make no child and write nothing', async (t) => {
  const { logger, lines, children } = capturingLogger('warn')
  const requestLogger = new LazyRequestLogger<Logger>(logger, { reqId: 'req-2' })
  requestLogger.info({ a: 1 }, 'incoming request')
  requestLogger.debug('details')
  requestLogger.trace('more details')
  requestLogger.silent('never')
  await settled()
  t.equal(children(), 0)
  t.same(lines, [])
  t.equal(requestLogger.isLevelEnabled('info'), false)
  t.equal(requestLogger.isLevelEnabled('warn'), true)
  t.equal(requestLogger.isLevelEnabled('fatal'), true)
})

t.test('error and fatal lines are written at their levels', async (t) => {
  const { logger, lines } = capturingLogger('error')
  const requestLogger = new LazyRequestLogger<Logger>(logger, { reqId: 'req-3' })
  requestLogger.error({ err: new Error('boom') }, 'request failed')
  requestLogger.fatal('down')
  await settled()
  t.match(lines, [
    { level: 50, reqId: 'req-3', msg: 'request failed', err: { message: 'boom', stack: /Error: boom/ } },
    { level: 60, reqId: 'req-3', msg: 'down' }
  ])
})

t.test('the level is the parent\'s until this request sets its own, which stays its own', async (t) => {
  const { logger, lines } = capturingLogger('info')
  const requestLogger = new LazyRequestLogger<Logger>(logger, { reqId: 'req-4' })
  t.equal(requestLogger.level, 'info')
  requestLogger.level = 'trace'
  t.equal(requestLogger.level, 'trace')
  t.equal(logger.level, 'info', 'the parent keeps its level')
  requestLogger.trace('now visible')
  await settled()
  t.match(lines, [{ level: 10, reqId: 'req-4', msg: 'now visible' }])
})

t.test('a child of a request logger carries both sets of bindings', async (t) => {
  const { logger, lines } = capturingLogger('info')
  const requestLogger = new LazyRequestLogger<Logger>(logger, { reqId: 'req-5' })
  requestLogger.child({ stage: 'snapshot' }).info('sent')
  await settled()
  t.match(lines, [{ reqId: 'req-5', stage: 'snapshot', msg: 'sent' }])
})

t.test('a child given options keeps them (its own level here)', async (t) => {
  const { logger, lines } = capturingLogger('info')
  const requestLogger = new LazyRequestLogger<Logger>(logger, { reqId: 'req-6' })
  requestLogger.child({ stage: 'flush' }, { level: 'debug' }).debug('details')
  await settled()
  t.match(lines, [{ level: 20, reqId: 'req-6', stage: 'flush', msg: 'details' }])
})

t.test('a logger without pino\'s numeric level is judged by its level name', async (t) => {
  const written: string[] = []
  const record = (level: string) => (objOrMsg: unknown, msg?: string) => { written.push(`${level}:${msg ?? String(objOrMsg)}`) }
  interface PlainLogger extends LevelLogger<PlainLogger> {}
  const parent: PlainLogger = {
    level: 'warn',
    fatal: record('fatal'),
    error: record('error'),
    warn: record('warn'),
    info: record('info'),
    debug: record('debug'),
    trace: record('trace'),
    child: () => parent
  }
  const requestLogger = new LazyRequestLogger<PlainLogger>(parent, { reqId: 'req-7' })
  requestLogger.info('incoming request')
  requestLogger.warn('slow client')
  t.same(written, ['warn:slow client'])
  t.equal(requestLogger.isLevelEnabled('info'), false)
  t.equal(requestLogger.isLevelEnabled('error'), true)
  parent.level = 'debug'
  t.equal(requestLogger.isLevelEnabled('debug'), true, 'the name is read on each check')
  parent.level = 'a-level-of-its-own'
  t.equal(requestLogger.isLevelEnabled('trace'), true, 'a name it does not know filters nothing')
})

t.test('silent writes nothing at any level, as pino does', async (t) => {
  const { logger, lines, children } = capturingLogger('silent')
  const requestLogger = new LazyRequestLogger<Logger>(logger, { reqId: 'req-8' })
  requestLogger.fatal('even this')
  requestLogger.error({ err: new Error('nor this') }, 'request failed')
  await settled()
  t.same(lines, [])
  t.equal(children(), 0)
  t.equal(requestLogger.isLevelEnabled('fatal'), false)
})

t.test('once the real child exists, its own level decides, raised or lowered', async (t) => {
  const { logger, lines } = capturingLogger('debug')
  const requestLogger = new LazyRequestLogger<Logger>(logger, { reqId: 'req-9' })
  requestLogger.debug('made the child')
  requestLogger.level = 'error'
  requestLogger.warn('dropped: below the raised level')
  requestLogger.error('kept')
  t.equal(logger.level, 'debug', 'the parent keeps its level')
  t.equal(requestLogger.isLevelEnabled('warn'), false)
  await settled()
  t.match(lines, [{ level: 20, reqId: 'req-9', msg: 'made the child' }, { level: 50, reqId: 'req-9', msg: 'kept' }])
  t.equal(lines.length, 2)
})
