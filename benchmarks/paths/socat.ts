/**
 * `socat-2hop`: the usual hand-made Nitro setup, two socat relays with their default settings:
 *   client → socat TCP-LISTEN → UNIX-CONNECT  ⇢  socat UNIX-LISTEN → TCP → server
 * socat forks a child per connection; their CPU counts through the parents (reaped children)
 * and the live children.
 */
import { start } from '../lib/processes.js';
import { twoHopPath } from './two-hop.js';

export const socatPath = twoHopPath({
  name: 'socat-2hop',
  program: 'socat',
  forks: true,
  startChain: ({ outer, inner, label }, ctx) => [
    start(`socat-${label}-inner`, 'socat', [`UNIX-LISTEN:${inner.socketPath},fork,unlink-early`, `TCP:127.0.0.1:${inner.serverPort}`], {
      nofile: ctx.nofile,
    }),
    start(
      `socat-${label}-outer`,
      'socat',
      [`TCP-LISTEN:${outer.entryPort},bind=127.0.0.1,fork,reuseaddr,backlog=4096`, `UNIX-CONNECT:${outer.socketPath}`],
      { nofile: ctx.nofile },
    ),
  ],
});
