/**
 * Credentials shorter-lived than the refresh margin are refreshed halfway through their life, not
 * on every use (which would hammer IMDS in a loop).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CredentialCache } from '../../../proxy-inner/imds/credential-cache.js';
import type { ImdsSource } from '../../../proxy-inner/imds/relay-client.js';

test('short-lived credentials are reused until half their life, then refreshed', async () => {
  let clock = Date.parse('2026-11-22T10:00:00Z');
  let fetches = 0;
  const source: ImdsSource = {
    async get(path: string) {
      if (path.endsWith('/security-credentials/')) return { id: 1, status: 200, body: 'role-a' };
      fetches += 1;
      const expiration = new Date(clock + 60_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
      return {
        status: 200,
        id: 2,
        body: JSON.stringify({
          Code: 'Success',
          Type: 'AWS-HMAC',
          AccessKeyId: `ASIA${fetches}`,
          SecretAccessKey: 's',
          Token: 't',
          Expiration: expiration,
          LastUpdated: new Date(clock).toISOString(),
        }),
      };
    },
  };
  const cache = new CredentialCache(source, { refreshMarginMs: 5 * 60_000, now: () => clock });
  try {
    const first = await cache.get();
    for (let i = 0; i < 5; i++) assert.equal((await cache.get()).credentials.accessKeyId, first.credentials.accessKeyId);
    assert.equal(fetches, 1, 'reused while fresh, even though the 5-minute margin exceeds their 1-minute life');
    clock += 29_000;
    assert.equal((await cache.get()).credentials.accessKeyId, 'ASIA1');
    clock += 2_000;
    assert.equal((await cache.get()).credentials.accessKeyId, 'ASIA2', 'refreshed past half their life');
    assert.equal(fetches, 2);
  } finally {
    cache.close();
  }
});
