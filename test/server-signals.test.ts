import { spawn } from 'node:child_process'
import t from 'tap'
import { register, request } from './helpers/http.js'
import { listeningUrl, REPO_ROOT, spawnServer } from './helpers/server-process.js'
import { SseClient } from './helpers/sse-client.js'
import { stuckStream } from './helpers/stuck-stream.js'

/*
 * Signals from a terminal or a supervisor, to the real entry point in its own process (apart
 * from server.test.ts: each test starts a server, and one file of them all outlasted tap's
 * per-file timeout on a slow machine).
 */

t.test('Ctrl-C on `npm start` reaches the server, which drains; npm exits with its status', async (t) => {
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: '0', LOG_LEVEL: 'info', FEED: 'none', SHUTDOWN_GRACE_MS: '3000' }
  delete env.NODE_OPTIONS
  // Its own process group, like a terminal's foreground job: Ctrl-C signals the whole group.
  const npm = spawn('npm', ['start', '--silent'], { cwd: REPO_ROOT, env, detached: true })
  t.teardown(() => { try { process.kill(-(npm.pid ?? 0), 'SIGKILL') } catch {} })
  let stdout = ''
  npm.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  npm.stderr.resume()
  const exited = new Promise<number | null>((resolve) => npm.once('close', (code) => resolve(code)))
  while (!/Server listening at (http:\/\/\S+?)"/.test(stdout)) await new Promise((resolve) => npm.stdout.once('data', resolve))
  const baseUrl = /Server listening at (http:\/\/\S+?)"/.exec(stdout)?.[1] ?? ''
  const session = await register(baseUrl, 'alice', ['AAPL'])
  const client = await SseClient.open(baseUrl, session.streamUrl)
  await client.next()
  process.kill(-(npm.pid ?? 0), 'SIGINT')
  const end = await client.waitFor((event) => event.event === 'end')
  t.same(end.json, { reason: 'shutdown' }, 'the stream got its end event')
  t.equal(await exited, 0, 'npm start exits 0, the server status')
  t.match(stdout, /"msg":"drained"/)
})

// SIGHUP: the terminal closed during a drain. close-with-grace alone exited 1 on any second signal.
for (const [first, second] of [['SIGINT', 'SIGINT'], ['SIGTERM', 'SIGHUP'], ['SIGHUP', 'SIGTERM'], ['SIGTERM', 'SIGUSR2']] as const) {
  t.test(`a second signal during the drain is ignored (${first}, then ${second}): the drain completes and the exit is 0`, async (t) => {
    const server = spawnServer({ SHUTDOWN_GRACE_MS: '2000', PUBLISH_TOKEN: 'tok', FLUSH_INTERVAL_MS: '5' })
    t.teardown(() => { server.child.kill('SIGKILL') })
    const baseUrl = await listeningUrl(server)
    // A stuck stream keeps the drain going until its deadline.
    const stuck = await stuckStream(baseUrl, t)
    server.child.kill(first)
    // The second signal arrives once the first is being handled (/ready says so).
    while ((await request(baseUrl, '/ready')).status === 200) { /* until the drain has begun */ }
    server.child.kill(second)
    const { code, signal } = await server.exited
    t.equal(code, 0, `exit status 0 (signal: ${String(signal)}, stderr: ${server.stderr()})`)
    t.match(server.stdout(), new RegExp(`"signal":"${second}","msg":"already shutting down"`))
    t.match(server.stdout(), /"msg":"drained"/)
    stuck.close()
  })
}
