/**
 * The inner's explicit allowances and the outer's guard (issue 9): the ranges an enclave policy
 * allows by address travel with each relay request (frame v2; v1 still parses), the guard lets
 * a tunnel reach a non-public address inside them and nothing else non-public, and Enclaver's
 * `host` is the parent's loopback only when an allow entry names `host` itself.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAuthority } from '../../../shared/egress/destination.js';
import { formatCidr, parseIPv4Strict, parseIPv6 } from '../../../shared/egress/ip.js';
import { compilePolicy, explicitRanges } from '../../../shared/egress/policy.js';
import { encodeEgressRequest, parseEgressRequest } from '../../../shared/egress/relay-frames.js';
import { encodeFrame, FrameError, FrameType, parseFrame } from '../../../shared/wire/frame.js';
import { AddressGuard } from '../../../proxy-outer/egress-relay/guard.js';
import { Resolver } from '../../../proxy-outer/egress-relay/resolver.js';

const ranges = (allow: string[], dest: string) => explicitRanges(compilePolicy({ allow }), parseAuthority(dest)).map(formatCidr);

test('explicit ranges: the CIDR allow entries for the port; `host` only when named as such', () => {
  const allow = ['10.0.0.0/8:5432', '127.0.0.0/8', '169.254.169.254', '**.example.com:443', '[fd00::/8]:443'];
  assert.deepEqual(ranges(allow, 'db.internal:5432'), ['10.0.0.0/8', '127.0.0.0/8', '169.254.169.254']);
  assert.deepEqual(ranges(allow, 'api.example.com:443'), ['127.0.0.0/8', '169.254.169.254', 'fd00::/8']);
  assert.deepEqual(ranges(['host:8080'], 'host:8080'), ['127.0.0.1']);
  assert.deepEqual(ranges(['host:8080'], 'host:9090'), [], 'not for another port');
  assert.deepEqual(ranges(['**', '*'], 'host:8080'), [], 'a wildcard never names the parent');
  assert.deepEqual(ranges(['host'], 'host.example:80'), []);
});

test('relay request frame v2 carries the ranges; v1 parses without them; other versions are refused', () => {
  const v2 = parseFrame(
    encodeEgressRequest({
      host: 'db.internal',
      port: 5432,
      conn_id: 'c-1',
      allow_ranges: [{ address: parseIPv4Strict('10.0.0.0')!, prefix: 8 }],
    }),
  );
  assert.ok(v2.done);
  assert.deepEqual(v2.value.payload, { v: 2, host: 'db.internal', port: 5432, conn_id: 'c-1', allow_ranges: ['10.0.0.0/8'] });
  assert.deepEqual(parseEgressRequest(v2.value).allow_ranges.map(formatCidr), ['10.0.0.0/8']);
  const frame = (payload: Record<string, unknown>) => {
    const r = parseFrame(encodeFrame(FrameType.EgressRequest, payload));
    assert.ok(r.done);
    return r.value;
  };
  assert.deepEqual(parseEgressRequest(frame({ host: 'a.test', port: 1, conn_id: 'c' })), {
    host: 'a.test',
    port: 1,
    conn_id: 'c',
    allow_ranges: [],
  });
  assert.throws(() => parseEgressRequest(frame({ v: 3, host: 'a.test', port: 1, conn_id: 'c', allow_ranges: [] })), FrameError);
  assert.throws(
    () => parseEgressRequest(frame({ v: 2, host: 'a.test', port: 1, conn_id: 'c', allow_ranges: ['10.0.0.0/33'] })),
    FrameError,
  );
  assert.throws(() => parseEgressRequest(frame({ v: 2, host: 'a.test', port: 1, conn_id: 'c' })), FrameError);
});

test("the guard: non-public addresses only inside the enclave's or the operator's ranges, every disguise judged", () => {
  const guard = new AddressGuard();
  const v4 = (t: string) => parseIPv4Strict(t)!;
  const enclave = [
    { address: v4('10.0.0.0'), prefix: 8 },
    { address: v4('169.254.169.254'), prefix: 32 },
  ];
  assert.equal(guard.permits(v4('10.1.2.3'), false), false, 'refused without ranges');
  assert.equal(guard.permits(v4('10.1.2.3'), false, enclave), true);
  assert.equal(guard.permits(v4('169.254.169.254'), false, enclave), true);
  assert.equal(guard.permits(v4('169.254.169.253'), false, enclave), false);
  assert.equal(guard.permits(v4('192.168.1.1'), false, enclave), false, 'a private address the policy never named (rebinding)');
  assert.equal(guard.permits(parseIPv6('::ffff:192.168.1.1')!, false, enclave), false, 'nor in disguise');
  assert.equal(
    guard.permits(parseIPv6('64:ff9b::a01:203')!, false, enclave),
    false,
    'NAT64 of 10.1.2.3: the IPv6 address itself is not in the ranges',
  );
  assert.equal(guard.permits(v4('93.184.216.34'), false), true, "public addresses are not the guard's business");
  const operator = new AddressGuard({ allowPrivate: [{ address: v4('192.168.0.0'), prefix: 16 }] });
  assert.equal(operator.permits(v4('192.168.1.1'), false, enclave), true);
  assert.match(guard.describe(), /refuses loopback, private, link-local/);
});

test("the outer resolves Enclaver's `host` to its own loopback, untrusted (the guard decides)", async () => {
  const r = await new Resolver(new Map(), (() => Promise.reject(new Error('no DNS in this test'))) as never).resolve('HOST');
  assert.deepEqual([r.addresses.map((a) => a.bytes.join('.')), r.trusted], [['127.0.0.1'], false]);
});
