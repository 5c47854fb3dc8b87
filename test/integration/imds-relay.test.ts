import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { fromInstanceMetadata } from '@aws-sdk/credential-providers';
import { CredentialCache } from '../../proxy-inner/imds/credential-cache.js';
import { imdsRequestListener } from '../../proxy-inner/imds/endpoint.js';
import { ImdsRelayClient } from '../../proxy-inner/imds/relay-client.js';
import { Imdsv2Client } from '../../proxy-outer/imds-relay/imdsv2-client.js';
import { startImdsRelay } from '../../proxy-outer/imds-relay/relay-server.js';
import { parseAddress, type Listening } from '../../shared/transport/index.js';
import { configureVsock } from '../../shared/transport/vsock.js';
import { type Served, serveOnLoopback } from '../helpers/serve.js';
import { CredentialStore } from '../emulators/credential-store.js';
import { ImdsEmulator } from '../emulators/imds/server.js';

const exec = promisify(execFile);

async function curl(...args: string[]): Promise<{ status: number; body: string }> {
  const { stdout } = await exec('curl', ['-s', '-w', '\n%{http_code}', ...args]);
  const cut = stdout.lastIndexOf('\n');
  return { status: Number(stdout.slice(cut + 1)), body: stdout.slice(0, cut) };
}

describe('IMDSv2 relay: IMDS emulator ← outer relay ← vsock (emulated) ← inner endpoint', () => {
  let clock = Date.now();
  const now = () => clock;
  const store = new CredentialStore(now);
  const imds = new ImdsEmulator({ store, now, credentialLifetimeMs: 3600_000 });
  let dir: string;
  let imdsUrl: string;
  let outerClient: Imdsv2Client;
  let relay: Listening;
  let cache: CredentialCache;
  let endpoint: Served;
  let refreshes = 0;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'imds-relay-'));
    configureVsock({ emulationDir: dir });
    imdsUrl = await imds.start();
    outerClient = new Imdsv2Client({ endpoint: imdsUrl });
    relay = await startImdsRelay({ address: parseAddress('vsock://any:17004'), client: outerClient });
    const relayClient = new ImdsRelayClient({ address: parseAddress('vsock://parent:17004') });
    cache = new CredentialCache(relayClient, { refreshMarginMs: 5 * 60_000, now, onRefresh: () => refreshes++ });
    endpoint = await serveOnLoopback(imdsRequestListener({ cache, relay: relayClient, region: () => cache.region(), now }));
  });

  after(async () => {
    cache.close();
    await endpoint.close();
    await relay.close();
    await imds.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("gives the AWS SDK's fromInstanceMetadata the role credentials", async () => {
    const provider = fromInstanceMetadata({ maxRetries: 0, timeout: 2000 });
    const saved = process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT;
    process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT = endpoint.url;
    try {
      const creds = await provider();
      const issued = store.lookup(creds.accessKeyId);
      assert.ok(issued, 'the SDK got credentials the emulator issued');
      assert.equal(creds.secretAccessKey, issued.secretAccessKey);
      assert.equal(creds.sessionToken, issued.sessionToken);
      assert.equal(creds.expiration?.getTime(), issued.expiration.getTime());
    } finally {
      if (saved === undefined) delete process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT;
      else process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT = saved;
    }
  });

  it('enforces IMDSv2 token semantics for the app (curl)', async () => {
    assert.equal((await curl(`${endpoint.url}/latest/meta-data/placement/region`)).status, 401);
    assert.equal((await curl('-X', 'PUT', `${endpoint.url}/latest/api/token`)).status, 400);
    assert.equal(
      (await curl('-X', 'PUT', '-H', 'x-aws-ec2-metadata-token-ttl-seconds: 99999', `${endpoint.url}/latest/api/token`)).status,
      400,
    );
    assert.equal(
      (
        await curl(
          '-X',
          'PUT',
          '-H',
          'x-aws-ec2-metadata-token-ttl-seconds: 60',
          '-H',
          'X-Forwarded-For: 10.0.0.1',
          `${endpoint.url}/latest/api/token`,
        )
      ).status,
      403,
    );
    const token = await curl('-X', 'PUT', '-H', 'x-aws-ec2-metadata-token-ttl-seconds: 60', `${endpoint.url}/latest/api/token`);
    assert.equal(token.status, 200);
    const auth = ['-H', `x-aws-ec2-metadata-token: ${token.body}`];
    assert.deepEqual(await curl(...auth, `${endpoint.url}/latest/meta-data/placement/region`), { status: 200, body: 'eu-west-1' });
    assert.equal(JSON.parse((await curl(...auth, `${endpoint.url}/latest/dynamic/instance-identity/document`)).body).region, 'eu-west-1');
    assert.equal((await curl(...auth, `${endpoint.url}/latest/meta-data/instance-id`)).status, 403);
    assert.equal((await curl(...auth, `${endpoint.url}/latest/user-data`)).status, 403);
    assert.equal((await curl(...auth, `${endpoint.url}/latest/meta-data/iam/security-credentials/other-role`)).status, 404);
    clock += 61_000;
    assert.equal((await curl(...auth, `${endpoint.url}/latest/meta-data/placement/region`)).status, 401, 'an expired app token is refused');
  });

  it('reuses one host token, and takes a new one when IMDS answers 401', async () => {
    await outerClient.get('/latest/meta-data/placement/region');
    const before = imds.tokensIssued;
    await outerClient.get('/latest/meta-data/placement/region');
    await outerClient.get('/latest/meta-data/placement/region');
    assert.equal(imds.tokensIssued, before, 'no new token while the current one is valid');
    imds.revokeTokens();
    const res = await outerClient.get('/latest/meta-data/placement/region');
    assert.equal(res.status, 200);
    assert.equal(imds.tokensIssued, before + 1);
    assert.ok(
      imds.requests.some((r) => r.status === 401),
      'IMDS did answer 401 once',
    );
  });

  it('renews the host token before its TTL runs out', async () => {
    let t = 0;
    const shortLived = new Imdsv2Client({ endpoint: imdsUrl, tokenTtlSeconds: 10, now: () => t });
    await shortLived.get('/latest/meta-data/placement/region');
    t += 5_000;
    await shortLived.get('/latest/meta-data/placement/region');
    assert.equal(shortLived.tokensFetched, 1);
    t += 4_500;
    await shortLived.get('/latest/meta-data/placement/region');
    assert.equal(shortLived.tokensFetched, 2, 'renewed within the last tenth of the TTL');
  });

  it('refuses at the outer relay any path the SDKs do not need', async () => {
    const relayClient = new ImdsRelayClient({ address: parseAddress('vsock://parent:17004') });
    assert.equal((await relayClient.get('/latest/user-data')).status, 403);
    assert.equal((await relayClient.get('/latest/meta-data/iam/security-credentials/../../user-data')).status, 403);
    assert.equal((await relayClient.get('/latest/meta-data/placement/region')).status, 200);
  });

  it("answers 502 through the relay when the host's IMDS cannot be reached", async () => {
    const unreachable = await startImdsRelay({
      address: parseAddress('vsock://any:17005'),
      client: new Imdsv2Client({ endpoint: 'http://127.0.0.1:9', timeoutMs: 500 }),
    });
    try {
      const res = await new ImdsRelayClient({ address: parseAddress('vsock://parent:17005') }).get('/latest/meta-data/placement/region');
      assert.equal(res.status, 502);
      assert.match(res.body, /did not answer/);
    } finally {
      await unreachable.close();
    }
  });

  it('refreshes credentials before Expiration, and keeps them between', async () => {
    const first = await cache.get();
    const count = refreshes;
    clock += 10 * 60_000;
    assert.equal((await cache.get()).credentials.accessKeyId, first.credentials.accessKeyId, 'fresh credentials are reused');
    assert.equal(refreshes, count);
    // Within the 5-minute margin of an expiry one hour out: refreshed.
    clock = first.credentials.expiration!.getTime() - 4 * 60_000;
    const second = await cache.get();
    assert.notEqual(second.credentials.accessKeyId, first.credentials.accessKeyId);
    assert.equal(refreshes, count + 1);
    assert.ok(second.credentials.expiration! > first.credentials.expiration!);
  });
});
