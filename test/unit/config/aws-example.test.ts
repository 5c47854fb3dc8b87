import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { parse } from 'yaml';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');

describe('configs/aws-kms.yaml', () => {
  it('passes --check with the KMS, IMDS and attestation listeners and the outer IMDS relay', () => {
    const r = spawnSync(
      process.execPath,
      [path.join(ROOT, 'dist/bin/enclaver-proxy.js'), '--config', path.join(ROOT, 'configs/aws-kms.yaml'), '--check'],
      { encoding: 'utf8' },
    );
    assert.equal(r.status, 0, r.stderr);
    const described = parse(r.stdout) as {
      outer: { imds_relay: { upstream: string } };
      inner: { listeners: { name: string }[]; nsm: { mode: string } };
    };
    assert.equal(described.outer.imds_relay.upstream, 'http://169.254.169.254');
    assert.deepEqual(
      described.inner.listeners.map((l) => l.name),
      ['kms', 'imds', 'attestation'],
    );
    assert.equal(described.inner.nsm.mode, 'auto');
  });
});
