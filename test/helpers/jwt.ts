import { createHmac } from 'node:crypto'

/**
 * Builds JWTs by hand (not with the library under test), so the tests check the service's
 * verification against the standard itself: base64url header.payload, HMAC signature.
 */
export function signJwt (payload: Record<string, unknown>, secret: string, alg: 'HS256' | 'HS512' | 'none' = 'HS256'): string {
  const encode = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')
  const head = `${encode({ alg, typ: 'JWT' })}.${encode(payload)}`
  if (alg === 'none') return `${head}.`
  const hash = alg === 'HS256' ? 'sha256' : 'sha512'
  return `${head}.${createHmac(hash, secret).update(head).digest('base64url')}`
}

export const nowSeconds = (): number => Math.floor(Date.now() / 1000)
