import { validateHeaderName, validateHeaderValue, type OutgoingHttpHeaders, type ServerResponse } from 'node:http'
import type { SseSink } from './session-stream.js'

/** The headers every event stream carries (the contract's, plus nosniff). */
export const SSE_HEADERS: Readonly<Record<string, string>> = {
  'content-type': 'text/event-stream',
  'cache-control': 'no-cache',
  // Tells nginx-style proxies not to buffer the stream.
  'x-accel-buffering': 'no',
  'x-content-type-options': 'nosniff'
}

/** Framing headers are this module's to decide; a hook may not set them. */
const FRAMING_HEADERS = new Set(['connection', 'content-length', 'transfer-encoding', 'keep-alive', 'date'])

/**
 * Starts the SSE response on `res` and returns where its events go.
 *
 * Normally that is the connection's socket itself: the status line and headers are written
 * to it once, and every event after them is one `socket.write`. Going through
 * `ServerResponse.write` instead costs, per event, a cork, a `process.nextTick` to uncork and
 * a buffered-write record, and the response keeps its header block alive for the stream's
 * life; at 10 000 streams both showed in the fan-out load run (BENCHMARKS.md). Without
 * chunked encoding the stream ends by closing the connection, so the response says
 * `Connection: close` and nothing else ever goes out on that connection after it.
 *
 * A response pipelined behind another one on the same connection has no socket yet (the
 * socket is still busy with the earlier response): it is written through `res`, which Node
 * queues until the socket is its turn.
 *
 * The `ServerResponse` of a socket-written stream never finishes, so Fastify's "request
 * completed" log line and `onResponse` hooks do not run for it; the registry logs the end of
 * the session instead (`session deactivated`, with its reason).
 */
export function startSseResponse (res: ServerResponse, hookHeaders: OutgoingHttpHeaders): SseSink {
  const headers = { ...withoutFramingHeaders(hookHeaders), ...SSE_HEADERS }
  const socket = res.socket
  if (socket === null) {
    res.useChunkedEncodingByDefault = false
    res.writeHead(200, headers)
    return res
  }
  const head = responseHead(headers)
  // A client that left before the first byte: the stream sees a destroyed sink and ends.
  if (socket.destroyed) return socket
  socket.setNoDelay(true)
  // Node's HTTP server keeps its sockets half-open: after our end() the connection would wait
  // for the client to close its side, which a client that never does would make forever. Once
  // the last event (and the FIN) is handed to the kernel, the socket is released, as
  // `ServerResponse.end` does on a `Connection: close` response.
  socket.once('finish', () => socket.destroy())
  socket.write(head)
  return socket
}

/** Lower-cased names (so the SSE headers replace a hook's whatever its spelling), framing ones dropped. */
function withoutFramingHeaders (headers: OutgoingHttpHeaders): OutgoingHttpHeaders {
  const kept: OutgoingHttpHeaders = {}
  for (const [name, value] of Object.entries(headers)) {
    const lowerName = name.toLowerCase()
    if (value !== undefined && !FRAMING_HEADERS.has(lowerName)) kept[lowerName] = value
  }
  return kept
}

/** `HTTP/1.1 200 OK` and the header block, validated as `writeHead` would (no CR/LF injection). */
export function responseHead (headers: OutgoingHttpHeaders): string {
  let head = 'HTTP/1.1 200 OK\r\n'
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue
    validateHeaderName(name)
    for (const item of Array.isArray(value) ? value : [value]) {
      const text = String(item)
      validateHeaderValue(name, text)
      head += `${name}: ${text}\r\n`
    }
  }
  return `${head}date: ${new Date().toUTCString()}\r\nconnection: close\r\n\r\n`
}
