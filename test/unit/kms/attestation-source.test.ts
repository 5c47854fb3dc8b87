import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { kmsEndpointFor } from '../../../proxy-inner/aws-services.js';
import { AttestationSource } from '../../../proxy-inner/kms/attestation-source.js';
import { ProxyError } from '../../../shared/errors/index.js';

describe('attestation documents for KMS recipients', () => {
  function source(reuseMs: number) {
    let now = 0;
    const asked: (Buffer | null | undefined)[] = [];
    let reused = 0;
    const s = new AttestationSource({
      nsm: {
        attest: (req) => {
          asked.push(req?.publicKey);
          return Buffer.from(`doc${asked.length}`);
        },
      },
      publicKey: Buffer.from('spki'),
      reuseMs,
      now: () => now,
      onReuse: () => reused++,
    });
    return {
      s,
      asked,
      advance: (ms: number) => {
        now += ms;
      },
      reused: () => reused,
    };
  }

  it('asks the NSM every time when reuse is 0, binding the recipient key', () => {
    const { s, asked } = source(0);
    assert.notDeepEqual(s.document(), s.document());
    assert.deepEqual(asked, [Buffer.from('spki'), Buffer.from('spki')]);
  });

  it('reuses a document within the window and counts the hits, then asks again', () => {
    const { s, asked, advance, reused } = source(30_000);
    const first = s.document();
    advance(29_999);
    assert.deepEqual(s.document(), first);
    assert.equal(reused(), 1);
    advance(1);
    assert.notDeepEqual(s.document(), first);
    assert.equal(asked.length, 2);
  });

  it('refuses a reuse window beyond five minutes', () => {
    assert.throws(
      () => source(5 * 60_000 + 1),
      (err: unknown) => err instanceof ProxyError && err.code === 'config_invalid',
    );
  });

  it('chooses the KMS endpoint per region, then the fixed one, then the regional default', () => {
    assert.equal(kmsEndpointFor({}, 'eu-west-1').href, 'https://kms.eu-west-1.amazonaws.com/');
    assert.equal(kmsEndpointFor({ endpoint: 'https://127.0.0.1:8443' }, 'eu-west-1').href, 'https://127.0.0.1:8443/');
    assert.equal(
      kmsEndpointFor({ endpoint: 'https://x', endpoints: { 'us-east-1': 'kms-fips.us-east-1.amazonaws.com:443' } }, 'us-east-1').host,
      'kms-fips.us-east-1.amazonaws.com',
    );
  });
});
