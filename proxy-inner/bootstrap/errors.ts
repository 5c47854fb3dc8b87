/** A bootstrap step that failed: the enclave must not go on half-prepared, so this stops the inner. */
import { ProxyError } from '../../shared/errors/index.js';

export type BootstrapStep = 'loopback' | 'entropy' | 'pid1' | 'clock';

export class BootstrapError extends ProxyError {
  readonly step: BootstrapStep;

  constructor(step: BootstrapStep, message: string, cause?: unknown) {
    super(`bootstrap_${step}`, `bootstrap step "${step}" failed: ${message}`, { step }, { cause });
    this.step = step;
  }
}
