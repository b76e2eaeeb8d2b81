import { execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { delay, freePort, type Server } from './process.js'
import { LISTEN_BACKLOG } from '../../src/extra-acceptors.js'

const NGINX = '/usr/sbin/nginx'
const NCHAN_MODULE = '/usr/lib/nginx/modules/ngx_nchan_module.so'

export function nchanInstalled (): boolean {
  return existsSync(NGINX) && existsSync(NCHAN_MODULE)
}

/**
 * nginx + nchan from Debian's packages: the load script installs them when missing (as root);
 * .ci/run installs them before the tests, which only check.
 */
export function ensureNchanInstalled (): void {
  if (nchanInstalled()) return
  process.stderr.write('installing nginx-light and libnginx-mod-nchan from Debian...\n')
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env })
  execFileSync('apt-get', ['install', '-y', '-qq', 'nginx-light', 'libnginx-mod-nchan'], { stdio: 'inherit', env })
}

/**
 * The peer: nchan in one nginx worker. Subscribers open `/sub/T1/T2/...` (one multi-channel
 * EventSource per client, like a tickstream stream watching several tickers); the publisher
 * POSTs each price to `/pub/<TICKER>`. Messages are not buffered for late subscribers beyond
 * the last one, matching tickstream's snapshot-then-live model as closely as nchan allows.
 */
export async function startNchan (maxConnections: number): Promise<Server> {
  if (!nchanInstalled()) throw new Error('nginx with nchan is not installed (apt-get install nginx-light libnginx-mod-nchan)')
  const port = await freePort()
  const dir = mkdtempSync(path.join(tmpdir(), 'nchan-'))
  for (const sub of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(path.join(dir, sub))
  const conf = `
load_module ${NCHAN_MODULE};
worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
worker_rlimit_nofile ${maxConnections * 2 + 1024};
events { worker_connections ${maxConnections + 1024}; }
http {
  access_log off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  nchan_shared_memory_size 256m;
  server {
    listen 127.0.0.1:${port} backlog=${LISTEN_BACKLOG};
    location = /health { return 200 'ok'; }
    location ~ ^/sub/(.+)$ {
      nchan_subscriber eventsource;
      nchan_channel_id_split_delimiter "/";
      nchan_channel_id $1;
    }
    location ~ ^/pub/(.+)$ {
      nchan_publisher;
      nchan_channel_id $1;
      nchan_message_buffer_length 1;
      nchan_message_timeout 60s;
    }
  }
}
`
  const confFile = path.join(dir, 'nginx.conf')
  writeFileSync(confFile, conf)
  const child = spawn(NGINX, ['-c', confFile, '-p', dir], { stdio: ['ignore', 'inherit', 'inherit'] })
  const url = `http://127.0.0.1:${port}`
  for (let attempt = 0; ; attempt++) {
    if (child.exitCode !== null) throw new Error(`nginx exited (${child.exitCode}): ${readFileSync(path.join(dir, 'error.log'), 'utf8')}`)
    try {
      if ((await fetch(`${url}/health`)).ok) break
    } catch {}
    if (attempt > 100) throw new Error('nginx did not start')
    await delay(100)
  }
  const masterPid = child.pid ?? 0
  return {
    url,
    child,
    // The master and its one worker: CPU and RSS are counted for both.
    pids: () => {
      const children = readFileSync(`/proc/${masterPid}/task/${masterPid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)
      return [masterPid, ...children]
    },
    stop: async () => {
      if (child.exitCode !== null) return
      const exited = once(child, 'exit')
      child.kill('SIGTERM')
      await exited
    }
  }
}
