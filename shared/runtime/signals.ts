/**
 * SIGINT/SIGTERM → one graceful shutdown. A second signal is logged and otherwise ignored: the
 * shutdown already has its own deadlines, and a half-finished drain helps nobody.
 */
import { logger } from '../log/logger.js';

const log = logger('signals');

export function onShutdownSignal(handler: (signal: NodeJS.Signals) => void): () => void {
  let fired = false;
  const listener = (signal: NodeJS.Signals) => {
    if (fired) {
      log.warn({ signal }, 'already shutting down');
      return;
    }
    fired = true;
    log.info({ signal }, 'shutting down');
    handler(signal);
  };
  process.on('SIGINT', listener);
  process.on('SIGTERM', listener);
  return () => {
    process.off('SIGINT', listener);
    process.off('SIGTERM', listener);
  };
}

export const SIGNAL_NUMBERS: Record<string, number> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGKILL: 9,
  SIGUSR1: 10,
  SIGUSR2: 12,
  SIGPIPE: 13,
  SIGALRM: 14,
  SIGTERM: 15,
};
