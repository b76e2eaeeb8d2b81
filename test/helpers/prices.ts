import type { FastifyInstance } from 'fastify'
import { toPriceUpdate, type PriceUpdate } from '../../src/price.js'

/** Publishes prices through the app's bus, exactly as POST /prices does after validation. */
export async function publish (app: FastifyInstance, prices: Array<Record<string, unknown>>): Promise<void> {
  const updates: PriceUpdate[] = prices.map((price) => {
    const result = toPriceUpdate(price, Date.now())
    if (!result.ok) throw new Error(`test price invalid: ${result.reason}`)
    return result.update
  })
  await app.bus.publish(updates)
}
