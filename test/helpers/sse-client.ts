import { request as httpRequest, type IncomingMessage } from 'node:http'

export interface SseEvent {
  id: string | undefined
  event: string
  data: string
  /** Parsed `data`, when it is JSON. */
  json: any
  /** Local receive time (ms), for lag measurements. */
  receivedAt: number
}

const GUARD_MS = 15_000

/**
 * A small, spec-following EventSource parser over a real socket, recording everything it
 * reads so tests can assert on events, comments, `retry:` lines and the raw bytes.
 */
export class SseClient {
  readonly events: SseEvent[] = []
  readonly comments: string[] = []
  readonly retries: number[] = []
  raw = ''
  /** Resolves when the response ends or the connection closes, whichever comes first. */
  readonly finished: Promise<void>
  private cursor = 0
  private buffer = ''
  private pending: { id: string | undefined, event: string, data: string[] } = { id: undefined, event: 'message', data: [] }
  private wakeUp: (() => void) | undefined
  private isFinished = false

  private constructor (readonly response: IncomingMessage) {
    response.setEncoding('utf8')
    this.finished = new Promise((resolve) => {
      const done = (): void => {
        if (this.isFinished) return
        this.isFinished = true
        this.notify()
        resolve()
      }
      response.on('end', done)
      response.on('close', done)
      response.on('error', done)
    })
    response.on('data', (chunk: string) => this.onData(chunk))
  }

  static async open (baseUrl: string, path: string, headers: Record<string, string> = {}): Promise<SseClient> {
    return await new Promise((resolve, reject) => {
      const req = httpRequest(new URL(path, baseUrl), { agent: false, headers: { accept: 'text/event-stream', ...headers } }, (res) => resolve(new SseClient(res)))
      req.on('error', reject)
      req.end()
    })
  }

  get status (): number {
    return this.response.statusCode ?? 0
  }

  get ended (): boolean {
    return this.isFinished
  }

  /** The next event not yet returned by `next`/`waitFor`, waiting for it if needed. */
  async next (guardMs = GUARD_MS): Promise<SseEvent> {
    return await this.waitFor(() => true, guardMs)
  }

  /** The next unread event matching `predicate`; events before it are consumed. */
  async waitFor (predicate: (event: SseEvent) => boolean, guardMs = GUARD_MS): Promise<SseEvent> {
    const deadline = Date.now() + guardMs
    for (;;) {
      while (this.cursor < this.events.length) {
        const event = this.events[this.cursor++]
        if (event !== undefined && predicate(event)) return event
      }
      if (this.isFinished) throw new Error(`stream finished before the awaited event (got ${this.events.map((e) => e.event).join(',')})`)
      const remaining = deadline - Date.now()
      if (remaining <= 0) throw new Error(`no matching event within ${guardMs} ms (got ${this.events.map((e) => e.event).join(',')})`)
      await new Promise<void>((resolve) => {
        const guard = setTimeout(resolve, remaining)
        this.wakeUp = () => {
          clearTimeout(guard)
          resolve()
        }
      })
    }
  }

  /** Resolves once a comment line has arrived (after those already seen, when `after` is given). */
  async waitForComment (after = 0, guardMs = GUARD_MS): Promise<string> {
    const deadline = Date.now() + guardMs
    while (this.comments.length <= after) {
      if (this.isFinished) throw new Error('stream finished before a comment')
      if (Date.now() >= deadline) throw new Error(`no comment within ${guardMs} ms`)
      await new Promise<void>((resolve) => {
        const guard = setTimeout(resolve, deadline - Date.now())
        this.wakeUp = () => {
          clearTimeout(guard)
          resolve()
        }
      })
    }
    return this.comments[after] ?? ''
  }

  /** Stops reading from the socket (the kernel buffers fill up, the server sees backpressure). */
  pause (): void {
    this.response.pause()
  }

  /** Reads again after `pause`. */
  resume (): void {
    this.response.resume()
  }

  /** Closes the connection from the client side. */
  close (): void {
    this.response.destroy()
  }

  private notify (): void {
    const wake = this.wakeUp
    this.wakeUp = undefined
    wake?.()
  }

  private onData (chunk: string): void {
    this.raw += chunk
    this.buffer += chunk
    let newline = this.buffer.indexOf('\n')
    while (newline !== -1) {
      const line = this.buffer.slice(0, newline).replace(/\r$/, '')
      this.buffer = this.buffer.slice(newline + 1)
      this.onLine(line)
      newline = this.buffer.indexOf('\n')
    }
    this.notify()
  }

  private onLine (line: string): void {
    if (line === '') {
      if (this.pending.data.length > 0) {
        const data = this.pending.data.join('\n')
        let json: unknown
        try {
          json = JSON.parse(data)
        } catch {
          json = undefined
        }
        this.events.push({ id: this.pending.id, event: this.pending.event, data, json, receivedAt: Date.now() })
      }
      this.pending = { id: this.pending.id, event: 'message', data: [] }
      return
    }
    if (line.startsWith(':')) {
      this.comments.push(line.slice(1).trim())
      return
    }
    const colon = line.indexOf(':')
    const field = colon === -1 ? line : line.slice(0, colon)
    const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '')
    if (field === 'data') this.pending.data.push(value)
    else if (field === 'event') this.pending.event = value
    else if (field === 'id') this.pending.id = value
    else if (field === 'retry' && /^\d+$/.test(value)) this.retries.push(Number(value))
  }
}
