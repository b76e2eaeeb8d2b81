import pino from 'pino'
import t from 'tap'
import { isDebugEnabled, silentLogger } from '../../src/logger.js'

t.test('isDebugEnabled asks the logger when it can tell, and says yes when it cannot', async (t) => {
  const destination = { write: () => {} }
  t.equal(isDebugEnabled(pino({ level: 'info' }, destination)), false, 'pino at info')
  t.equal(isDebugEnabled(pino({ level: 'debug' }, destination)), true, 'pino at debug')
  t.equal(isDebugEnabled(pino({ level: 'trace' }, destination)), true, 'pino at trace')
  const logger = pino({ level: 'info' }, destination)
  logger.level = 'debug'
  t.equal(isDebugEnabled(logger), true, 'a level changed at run time counts')
  t.equal(isDebugEnabled(silentLogger), true, 'a logger without a level check (a test double) gets every line')
})
