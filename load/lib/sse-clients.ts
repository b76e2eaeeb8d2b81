import { connect, type Socket } from 'node:net'

/**
 * Many SSE subscribers over raw sockets, as cheap as possible for the generator: no HTTP
 * client library, a line parser that only looks at `data:` lines. A data payload is either
 * tickstream's `{"prices":[...]}` or one price (nchan publishes each message as is).
 */
export interface FanoutStats {
  opened: number
  failedOpens: number
  earlyEnds: number
  delivered: number
  /** Receive time minus the price's `ts`, in ms, sampled while measuring. */
  staleness: number[]
}

export class SseClientPool {
  readonly stats: FanoutStats = { opened: 0, failedOpens: 0, earlyEnds: 0, delivered: 0, staleness: [] }
  private readonly sockets = new Set<Socket>()
  private measuring = false
  private closing = false
  /** Keeps one staleness sample in `sampleEvery` so 10k streams do not fill memory. */
  private sampleCounter = 0

  constructor (private readonly host: string, private readonly port: number, private readonly sampleEvery = 1) {}

  startMeasuring (): void {
    this.stats.delivered = 0
    this.stats.staleness = []
    this.measuring = true
  }

  stopMeasuring (): void {
    this.measuring = false
  }

  /** Opens one stream; resolves once its response headers arrived (or it failed). */
  async open (path: string): Promise<boolean> {
    return await new Promise((resolve) => {
      const socket = connect(this.port, this.host)
      socket.setNoDelay(true)
      let head = ''
      let headerDone = false
      let buffer = ''
      let settled = false
      const settle = (ok: boolean): void => {
        if (settled) return
        settled = true
        if (ok) this.stats.opened++
        else this.stats.failedOpens++
        resolve(ok)
      }
      socket.setEncoding('utf8')
      socket.on('connect', () => {
        socket.write(`GET ${path} HTTP/1.1\r\nHost: ${this.host}\r\nAccept: text/event-stream\r\n\r\n`)
      })
      socket.on('data', (chunk: string) => {
        if (!headerDone) {
          head += chunk
          const end = head.indexOf('\r\n\r\n')
          if (end === -1) return
          headerDone = true
          if (!/^HTTP\/1\.1 200/.test(head)) {
            settle(false)
            socket.destroy()
            return
          }
          this.sockets.add(socket)
          settle(true)
          chunk = head.slice(end + 4)
        }
        buffer += chunk
        let newline = buffer.indexOf('\n')
        while (newline !== -1) {
          const line = buffer.slice(0, newline)
          buffer = buffer.slice(newline + 1)
          if (line.startsWith('data:')) this.onData(line.slice(5))
          newline = buffer.indexOf('\n')
        }
      })
      socket.on('error', () => settle(false))
      socket.on('close', () => {
        settle(false)
        if (this.sockets.delete(socket) && !this.closing) this.stats.earlyEnds++
      })
    })
  }

  get openCount (): number {
    return this.sockets.size
  }

  closeAll (): void {
    this.closing = true
    for (const socket of this.sockets) socket.destroy()
    this.sockets.clear()
  }

  private onData (payload: string): void {
    if (!this.measuring) return
    const now = Date.now()
    // A chunked-encoding size line never starts with "data:", so the payload is whole JSON.
    let parsed: unknown
    try {
      parsed = JSON.parse(payload)
    } catch {
      return
    }
    const prices = typeof parsed === 'object' && parsed !== null && Array.isArray((parsed as { prices?: unknown }).prices)
      ? (parsed as { prices: Array<{ ts?: number }> }).prices
      : [parsed as { ts?: number }]
    for (const price of prices) {
      if (typeof price.ts !== 'number') continue
      this.stats.delivered++
      if (++this.sampleCounter % this.sampleEvery === 0) this.stats.staleness.push(now - price.ts)
    }
  }
}
