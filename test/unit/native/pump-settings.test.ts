import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_PIPE_SIZE, choosePumpSettings, readPipeLimits, type PipeLimits } from '../../../shared/native/pump-settings.js';

const defaults: PipeLimits = { pipeMaxSize: 1048576, pipeUserPagesSoft: 16384, pipeUserPagesHard: 0, exemptFromPipeLimits: false };

describe('native pump settings', () => {
  it('keeps an unprivileged process within half the per-user soft page limit', () => {
    const s = choosePumpSettings(defaults, {});
    assert.equal(s.pipeSize, DEFAULT_PIPE_SIZE);
    assert.equal(s.pipeBudgetPages, 8192);
    assert.ok(s.threads >= 1);
    // Idle pipes are a fraction of what the budget allows.
    assert.ok(s.maxIdlePipes * (s.pipeSize / 4096) * s.threads <= s.pipeBudgetPages / 4);
  });

  it('honours a hard limit below the soft one', () => {
    assert.equal(choosePumpSettings({ ...defaults, pipeUserPagesHard: 4000 }, {}).pipeBudgetPages, 2000);
  });

  it('caps the pipe size at pipe-max-size unless the process is exempt', () => {
    assert.equal(choosePumpSettings({ ...defaults, pipeMaxSize: 131072 }, {}).pipeSize, 131072);
    const exempt = choosePumpSettings({ ...defaults, pipeMaxSize: 131072, exemptFromPipeLimits: true }, {});
    assert.equal(exempt.pipeSize, DEFAULT_PIPE_SIZE);
    assert.equal(exempt.pipeBudgetPages, 65536);
  });

  it('takes overrides from the environment, rounded to whole pages, and ignores junk', () => {
    const s = choosePumpSettings(defaults, { ENCLAVER_PUMP_PIPE_SIZE: '65537', ENCLAVER_PUMP_THREADS: '3' });
    assert.equal(s.pipeSize, 65536 + 4096);
    assert.equal(s.threads, 3);
    const junk = choosePumpSettings(defaults, { ENCLAVER_PUMP_PIPE_SIZE: '64k', ENCLAVER_PUMP_THREADS: '-2' });
    assert.equal(junk.pipeSize, DEFAULT_PIPE_SIZE);
    assert.ok(junk.threads >= 1);
  });

  it('reads the kernel limits from /proc', () => {
    const l = readPipeLimits();
    assert.equal(typeof l.exemptFromPipeLimits, 'boolean');
    assert.ok(l.pipeMaxSize === null || l.pipeMaxSize >= 4096);
  });
});
