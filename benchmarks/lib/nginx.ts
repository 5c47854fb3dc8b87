/**
 * nginx as the benchmarks run it, both as the app and as a compared proxy: one worker in the
 * foreground, no access log, its config, pid and error log under `dir`. Only the `http { }` body
 * differs between the two, so the settings that make the figures comparable are written once.
 */
import fs from 'node:fs';
import path from 'node:path';
import { start, type Tracked } from './processes.js';

export function startNginx(name: string, dir: string, httpBody: string, nofile: number): Tracked {
  fs.mkdirSync(dir, { recursive: true });
  const conf = path.join(dir, 'nginx.conf');
  fs.writeFileSync(
    conf,
    `worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 65536; }
http {
  access_log off;
${httpBody}}
`,
  );
  return start(name, 'nginx', ['-p', dir, '-c', conf], { nofile });
}
