#!/usr/bin/env node
// The executable: runs the CLI and exits with its code once stdout and stderr have drained. Why the
// wait: on a pipe Node writes asynchronously once the pipe is full (64 KiB), and `process.exit()`
// drops what is still queued, so `enclaver-proxy schema | jq` used to lose its tail. Every command
// returns here, so this is the one place that has to get it right.
import { main } from './cli/main.js';
import { exitWhenFlushed } from '../shared/util/exit.js';

main(process.argv.slice(2)).then(
  (code) => exitWhenFlushed(code),
  (err: unknown) => {
    process.stderr.write(`enclaver-proxy: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    exitWhenFlushed(70);
  },
);
