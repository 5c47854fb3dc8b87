/**
 * Keeps the enclave's clock in step with the parent's. Enclaves drift (Evervault measured up to
 * 6 s a week) and nothing inside corrects them; a wrong clock makes valid certificates look expired
 * and attestation documents look stale. Every interval the inner asks the outer's clock channel
 * (vsock 17006) for its time, estimates the offset from the round trip (NTP's midpoint rule), and
 * steps the clock (clock_settime, through the addon) when it is off by more than the tolerance.
 *
 * The parent is untrusted, so its time is too: one step is at most `maxStepMs` (default 5 s a
 * minute, far above real drift), every step is logged with the offset it corrects, and a sample
 * with a slow round trip is ignored. A parent that lies can only drag the clock slowly and loudly.
 */
import { Gauge } from '../../shared/metrics/prom.js';
import { messageOf } from '../../shared/errors/index.js';
import type { Logger } from '../../shared/log/logger.js';
import { registry } from '../../shared/metrics/registry.js';
import { connect } from '../../shared/transport/index.js';
import { parentChannel } from '../../shared/transport/vsock.js';
import { recordClockOffset } from '../../shared/util/clock-skew.js';
import { readPrefix } from '../../shared/util/read-prefix.js';
import { encodeFrame, FrameType, MAX_PAYLOAD, parseFrame } from '../../shared/wire/frame.js';
import { PairPort } from '../../shared/wire/ports.js';

/** Offsets below this are noise (the round trip's own asymmetry). */
export const TOLERANCE_MS = 250;
/** A sample whose round trip took longer than this says little about the offset. */
export const MAX_RTT_MS = 2000;
const TIMEOUT_MS = 5000;

const offsetGauge = new Gauge({
  name: 'enclaver_clock_offset_seconds',
  help: 'Parent clock minus enclave clock at the last sync, before any step (positive: the enclave was behind).',
  registers: [registry],
});

export interface ClockSample {
  /** Parent minus local, ms. */
  offsetMs: number;
  rttMs: number;
}

/** What one sample asks for: nothing, or a step (positive = forward) bounded by maxStepMs. */
export function plannedStep(sample: ClockSample, maxStepMs: number): { stepMs: number; clamped: boolean } | null {
  if (sample.rttMs > MAX_RTT_MS || Math.abs(sample.offsetMs) <= TOLERANCE_MS) return null;
  const stepMs = Math.max(-maxStepMs, Math.min(maxStepMs, sample.offsetMs));
  return { stepMs, clamped: stepMs !== sample.offsetMs };
}

/** One request to the parent's clock channel; the offset by the midpoint of the round trip. */
export async function sampleParentClock(now: () => number = Date.now): Promise<ClockSample> {
  const socket = await connect(parentChannel(PairPort.Clock), { timeoutMs: TIMEOUT_MS });
  try {
    const t0 = now();
    socket.write(encodeFrame(FrameType.ClockRequest, {}));
    const { value } = await readPrefix(socket, parseFrame, {
      timeoutMs: TIMEOUT_MS,
      maxBytes: MAX_PAYLOAD + 6,
      what: 'clock response frame',
    });
    const t1 = now();
    const parentMs = value.payload.now_ms;
    if (value.type !== FrameType.ClockResponse || typeof parentMs !== 'number' || !Number.isFinite(parentMs))
      throw new Error('unexpected answer on the clock channel');
    return { offsetMs: Math.round(parentMs + (t1 - t0) / 2 - t1), rttMs: t1 - t0 };
  } finally {
    socket.destroy();
  }
}

export interface ClockSyncOptions {
  intervalMs: number;
  maxStepMs: number;
  /** Sets the wall clock (the addon's clock_settime in production). */
  setClock: (msSinceEpoch: number) => void;
  log: Logger;
}

export class ClockSync {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;

  constructor(private readonly opts: ClockSyncOptions) {}

  /** One sync now: the sample (when the parent answered) and the step taken in ms (0: none). Logs, never throws. */
  async syncOnce(): Promise<{ stepMs: number; sample?: ClockSample }> {
    let sample: ClockSample;
    try {
      sample = await sampleParentClock();
    } catch (err) {
      this.opts.log.warn({ err: messageOf(err) }, 'clock sync with the parent failed; will try again');
      return { stepMs: 0 };
    }
    recordClockOffset(sample.offsetMs);
    offsetGauge.set(sample.offsetMs / 1000);
    const step = plannedStep(sample, this.opts.maxStepMs);
    if (!step) {
      this.opts.log.debug({ offset_ms: sample.offsetMs, rtt_ms: sample.rttMs }, 'enclave clock in step with the parent');
      return { stepMs: 0, sample };
    }
    try {
      this.opts.setClock(Date.now() + step.stepMs);
    } catch (err) {
      this.opts.log.error({ err: messageOf(err), offset_ms: sample.offsetMs }, 'cannot set the enclave clock (needs CAP_SYS_TIME)');
      return { stepMs: 0, sample };
    }
    const record = { offset_ms: sample.offsetMs, step_ms: step.stepMs, rtt_ms: sample.rttMs, max_step_ms: this.opts.maxStepMs };
    if (step.clamped) this.opts.log.error(record, "enclave clock far from the parent's; stepped by the bounded maximum only");
    else this.opts.log.warn(record, "enclave clock stepped to the parent's");
    return { stepMs: step.stepMs, sample };
  }

  start(): void {
    const tick = () => {
      this.running = this.syncOnce().finally(() => {
        this.timer = setTimeout(tick, this.opts.intervalMs);
        this.timer.unref();
      });
    };
    tick();
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    await this.running;
    clearTimeout(this.timer);
  }
}
