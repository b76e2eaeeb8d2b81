import { request as httpRequest } from 'node:http'

export interface JsonResponse {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: any
  text: string
}

export interface RequestOptions {
  method?: string
  headers?: Record<string, string>
  /** An object is sent as JSON with `content-type: application/json`; a string is sent as is. */
  body?: unknown
}

/** One HTTP request over a real socket (no keep-alive), body parsed as JSON when it is JSON. */
export async function request (baseUrl: string, path: string, options: RequestOptions = {}): Promise<JsonResponse> {
  // The path goes out as written: URL parsing would resolve `..` and `%2E%2E` segments away.
  const { hostname, port } = new URL(baseUrl)
  const headers: Record<string, string> = { connection: 'close', ...options.headers }
  let payload: string | undefined
  if (typeof options.body === 'string') {
    payload = options.body
  } else if (options.body !== undefined) {
    payload = JSON.stringify(options.body)
    headers['content-type'] ??= 'application/json'
  }
  if (payload !== undefined) headers['content-length'] = String(Buffer.byteLength(payload))
  return await new Promise((resolve, reject) => {
    const req = httpRequest({ hostname, port, path, method: options.method ?? 'GET', headers }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('error', reject)
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        let body: unknown = text
        if (String(res.headers['content-type'] ?? '').includes('json') && text !== '') body = JSON.parse(text)
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text })
      })
    })
    req.on('error', reject)
    if (payload !== undefined) req.write(payload)
    req.end()
  })
}

export async function register (baseUrl: string, userId: string, tickers: string[]): Promise<{ sessionId: string, streamUrl: string, evicted: string[], [key: string]: unknown }> {
  const res = await request(baseUrl, '/sessions', { method: 'POST', body: { userId, tickers } })
  if (res.status !== 201) throw new Error(`register failed: ${res.status} ${res.text}`)
  return res.body
}

/** `/metrics` as a map from series (`name` or `name{labels}`) to value. */
export async function metrics (baseUrl: string): Promise<Map<string, number>> {
  const res = await request(baseUrl, '/metrics')
  const values = new Map<string, number>()
  for (const line of res.text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue
    const space = line.lastIndexOf(' ')
    values.set(line.slice(0, space), Number(line.slice(space + 1)))
  }
  return values
}

export function metric (values: Map<string, number>, series: string): number {
  const value = values.get(series)
  if (value === undefined) throw new Error(`metric ${series} not exposed`)
  return value
}
