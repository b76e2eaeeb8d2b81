import { existsSync } from 'node:fs'
import path from 'node:path'
import helmet from '@fastify/helmet'
import fastifyStatic from '@fastify/static'
import fp from 'fastify-plugin'

/**
 * `public/` at the repository root. This file runs as `plugins/page.ts` from source (tests)
 * and as `dist/plugins/page.js` once built (`npm start`), so the root is found as the nearest
 * ancestor holding package.json rather than by a fixed number of `..`.
 */
export function findPublicDir (fromDir: string = import.meta.dirname): string {
  let dir = fromDir
  while (!existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir)
    /* c8 ignore next -- only a broken checkout has no package.json above plugins/ */
    if (parent === dir) throw new Error(`tickstream page: no package.json above ${fromDir}`)
    dir = parent
  }
  const publicDir = path.join(dir, 'public')
  /* c8 ignore next -- public/ ships with the repository; without it the page must not start half-served */
  if (!existsSync(path.join(publicDir, 'index.html'))) throw new Error(`tickstream page: ${publicDir}/index.html is missing`)
  return publicDir
}

/**
 * The browser page at `GET /` (plain ES modules and CSS from `public/`, no build step) with the
 * security headers a page needs. The CSP allows only this origin for scripts, styles and
 * connections, so the page's scripts must stay in files (no inline script or style).
 *
 * Helmet and the static files live in their own encapsulated scope, so helmet's hooks run for
 * the page's routes only. The API's JSON and event streams carry `nosniff` (api-headers.ts)
 * and none of the document headers, which mean nothing there; registered globally, helmet's
 * two `onRequest` hooks ran on every API request, even on routes that opted out: +69 k
 * instructions per request on a bare app (BENCHMARKS.md, `npm run load:instructions`).
 */
export default fp(async function pagePlugin (fastify) {
  await fastify.register(async function pageScope (page) {
    await page.register(helmet, {
      contentSecurityPolicy: {
        // Listed in full rather than merged with helmet's defaults, which allow inline styles and
        // add upgrade-insecure-requests: the service is reached over plain HTTP (localhost, or
        // behind a proxy that terminates TLS), where that directive would break every asset.
        useDefaults: false,
        directives: {
          defaultSrc: ["'self'"],
          scriptSrc: ["'self'"],
          scriptSrcAttr: ["'none'"],
          styleSrc: ["'self'"],
          connectSrc: ["'self'"],
          imgSrc: ["'self'"],
          fontSrc: ["'self'"],
          objectSrc: ["'none'"],
          baseUri: ["'self'"],
          formAction: ["'self'"],
          frameAncestors: ["'self'"]
        }
      }
    })

    await page.register(fastifyStatic, {
      root: findPublicDir(),
      // One route per file found at start instead of a catch-all `/*`: any other path still
      // reaches the service's not-found handler and its JSON 404.
      wildcard: false,
      decorateReply: false
    })
  })
}, { name: 'tickstream-page', fastify: '5.x' })
