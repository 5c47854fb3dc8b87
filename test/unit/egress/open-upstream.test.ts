/**
 * What the inner makes of each answer of the outer relay: the error codes become the HTTP status
 * and SOCKS5 reply the issue prescribes, the reported address is checked against the deny CIDRs,
 * and destination bytes that arrive with the answer are kept. The outer here is a stand-in that
 * speaks the real frames on a Unix socket, so each answer can be chosen.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseAuthority } from '../../../shared/egress/destination.js';
import { formatCidr } from '../../../shared/egress/ip.js';
import type { EgressAnswer } from '../../../shared/egress/relay-frames.js';
import { parseAddress } from '../../../shared/transport/index.js';
import { isRefusal, openUpstream, type Refusal } from '../../../proxy-inner/egress/open-upstream.js';
import { egressContext } from '../../../proxy-inner/egress/context.js';
import { egressSlice } from '../../helpers/egress.js';
import { startRelayStub, type RelayStub } from '../../helpers/relay-stub.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'relay-stub-'));
let stub: RelayStub;

before(async () => {
  stub = await startRelayStub(dir);
});

after(async () => {
  await stub.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const ctx = egressContext(
  egressSlice({ allow: ['**', '0.0.0.0/0', '::/0'], deny: ['10.0.0.0/8', 'blocked.example'], connect_timeout: '2s' }),
  { relay: parseAddress(`unix://${path.join(dir, 'relay.sock')}`), audit: () => {} },
);

async function refusal(dest: string): Promise<Refusal> {
  const r = await openUpstream(ctx, parseAuthority(dest), 'c1');
  assert.ok(isRefusal(r), `${dest} opened`);
  return r;
}

test('relay error codes map to the HTTP status and SOCKS5 reply of each failure', async () => {
  const cases: Array<[string, [string, string, number, number]]> = [
    ['resolve_failed', ['error', 'resolve_failed', 502, 0x04]],
    ['connect_refused', ['error', 'upstream_refused', 502, 0x05]],
    ['connect_timeout', ['error', 'upstream_timeout', 504, 0x04]],
    ['unreachable', ['error', 'upstream_unreachable', 502, 0x03]],
    ['guard_refused', ['deny', 'outer_guard_refused', 403, 0x02]],
    ['upstream_proxy_failed', ['error', 'upstream_proxy_failed', 502, 0x01]],
    ['bad_request', ['error', 'relay_rejected_request', 502, 0x01]],
    ['something_new', ['error', 'upstream_unreachable', 502, 0x03]],
  ];
  for (const [code, want] of cases) {
    stub.answerWith(() => ({ answer: { ok: false, code, message: 'stub' } as EgressAnswer }));
    const r = await refusal('ok.example:443');
    assert.deepEqual([r.decision, r.reason, r.status, r.socksReply], want, code);
    assert.equal(r.rule, '**', 'the allowing rule is kept for the audit record');
  }
});

test('no relay, or a relay that hangs up, is a 502 with relay_unavailable', async () => {
  stub.answerWith(() => ({ answer: null }));
  const r = await refusal('ok.example:443');
  assert.deepEqual([r.reason, r.status, r.socksReply], ['relay_unavailable', 502, 0x01]);
  const gone = await openUpstream(
    { ...ctx, deps: { ...ctx.deps, relay: parseAddress(`unix://${dir}/nobody.sock`) } },
    parseAuthority('ok.example:443'),
    'c2',
  );
  assert.ok(isRefusal(gone) && gone.reason === 'relay_unavailable');
});

test('the reported address is validated and checked against deny CIDRs, disguises included', async () => {
  for (const [address, reason] of [
    ['10.1.2.3', 'resolved_address_denied'],
    ['::ffff:10.1.2.3', 'resolved_address_denied'],
    ['64:ff9b::a01:203', 'resolved_address_denied'],
    ['not-an-ip', 'relay_bad_address'],
    ['0x0a.1', 'relay_bad_address'],
  ] as const) {
    stub.answerWith(() => ({ answer: { ok: true, address } }));
    const r = await refusal('ok.example:443');
    assert.equal(r.reason, reason, address);
  }
});

test('a refused destination never reaches the relay; an accepted one keeps the bytes behind the answer', async () => {
  stub.seen.length = 0;
  const denied = await refusal('blocked.example:443');
  assert.deepEqual([denied.reason, denied.status, denied.rule], ['denied_by_rule', 403, 'blocked.example']);
  assert.equal(stub.seen.length, 0);
  stub.answerWith(() => ({ answer: { ok: true, address: '93.184.216.34' }, after: Buffer.from('220 smtp ready\r\n') }));
  const opened = await openUpstream(ctx, parseAuthority('MAIL.Example.:25'), 'c3');
  assert.ok(!isRefusal(opened));
  assert.equal(opened.destIp, '93.184.216.34');
  assert.equal(opened.headDown.toString(), '220 smtp ready\r\n');
  const seen = stub.seen[0]!;
  assert.deepEqual(
    { ...seen, allow_ranges: seen.allow_ranges.map(formatCidr) },
    { host: 'mail.example', port: 25, conn_id: 'c3', allow_ranges: ['0.0.0.0/0', '::/0'] },
    'the relay gets the canonical host and the ranges the policy allows explicitly',
  );
  opened.socket.destroy();
});
