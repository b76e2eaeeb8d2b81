import pino from 'pino'
import t from 'tap'
import { isLevelEnabled, silentLogger } from '../../src/logger.js'

t.test('isLevelEnabled asks the logger when it can tell, and says yes when it cannot', async (t) => {
  const destination = { write: () => {} }
  t.equal(isLevelEnabled(pino({ level: 'info' }, destination), 'debug'), false, 'pino at info: no debug')
  t.equal(isLevelEnabled(pino({ level: 'info' }, destination), 'info'), true, 'pino at info: info')
  t.equal(isLevelEnabled(pino({ level: 'warn' }, destination), 'info'), false, 'pino at warn: no info')
  t.equal(isLevelEnabled(pino({ level: 'debug' }, destination), 'debug'), true, 'pino at debug')
  t.equal(isLevelEnabled(pino({ level: 'trace' }, destination), 'debug'), true, 'pino at trace')
  const logger = pino({ level: 'info' }, destination)
  logger.level = 'debug'
  t.equal(isLevelEnabled(logger, 'debug'), true, 'a level changed at run time counts')
  t.equal(isLevelEnabled(silentLogger, 'debug'), true, 'a logger without a level check (a test double) gets every line')
})
