/**
 * `haproxy-2hop`: two HAProxy processes in TCP mode with `option splice-auto`, one thread each
 * (as our pump runs one thread per process on two cores) and 256 KiB pipes, like ours.
 */
import fs from 'node:fs';
import path from 'node:path';
import { start } from '../lib/processes.js';
import { twoHopPath } from './two-hop.js';

// No maxconn: HAProxy then derives it from the fd limit it is given.
function config(bind: string, server: string): string {
  return `global
  nbthread 1
  tune.pipesize 262144
defaults
  mode tcp
  option splice-auto
  timeout connect 5s
  timeout client 1h
  timeout server 1h
frontend hop
  bind ${bind}
  default_backend next
backend next
  server next ${server}
`;
}

export const haproxyPath = twoHopPath({
  name: 'haproxy-2hop',
  program: 'haproxy',
  forks: false,
  startChain: ({ outer, inner, label }, ctx) => {
    const innerCfg = path.join(ctx.workDir, `haproxy-${label}-inner.cfg`);
    const outerCfg = path.join(ctx.workDir, `haproxy-${label}-outer.cfg`);
    fs.writeFileSync(innerCfg, config(`unix@${inner.socketPath}`, `127.0.0.1:${inner.serverPort}`));
    fs.writeFileSync(outerCfg, config(`127.0.0.1:${outer.entryPort}`, `unix@${outer.socketPath}`));
    return [
      start(`haproxy-${label}-inner`, 'haproxy', ['-db', '-f', innerCfg], { nofile: ctx.nofile }),
      start(`haproxy-${label}-outer`, 'haproxy', ['-db', '-f', outerCfg], { nofile: ctx.nofile }),
    ];
  },
});
