import assert from 'node:assert/strict';
import { KMSServiceException } from '@aws-sdk/client-kms';

/** The KMS service error a call through @aws-sdk/client-kms must end in (fails the test if it succeeds). */
export async function kmsError(p: Promise<unknown>): Promise<KMSServiceException> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof KMSServiceException, `expected a KMS service error, got ${String(err)}`);
    return err;
  }
  assert.fail('the call unexpectedly succeeded');
}
