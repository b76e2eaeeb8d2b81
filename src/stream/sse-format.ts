/**
 * Server-Sent Events framing. Payloads are single-line JSON (JSON.stringify never emits a
 * raw newline), so each event has exactly one `data:` line.
 */
export type StreamEventName = 'snapshot' | 'prices' | 'end'

export function sseEvent (id: number, event: StreamEventName, data: string): string {
  return `id: ${id}\nevent: ${event}\ndata: ${data}\n\n`
}

export function sseRetry (retryMs: number): string {
  return `retry: ${retryMs}\n\n`
}

export const SSE_HEARTBEAT = ': heartbeat\n\n'

/** `{"prices":[...]}` from already serialized prices: no per-session re-serialization. */
export function pricesPayload (serializedPrices: readonly string[]): string {
  return `{"prices":[${serializedPrices.join(',')}]}`
}
