/**
 * The egress policy as a table: every rule form, every numeric and IPv6 disguise, every malformed
 * destination the issue names. Each row goes through the same path a CONNECT authority takes
 * (parseAuthority → decide → decideConnected), so the table is the acceptance bar of the matcher.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DestinationError, canonicalHost, parseAuthority } from '../../../shared/egress/destination.js';
import { compilePolicy, decide, decideConnected, PolicyRuleError } from '../../../shared/egress/policy.js';
import { embeddedIPv4, formatIp, isNonPublic, parseIPv4Any, parseIPv6 } from '../../../shared/egress/ip.js';

type Expect = 'allow' | 'deny' | 'malformed';
interface Row {
  allow: string[];
  deny?: string[];
  dest: string;
  expect: Expect;
  /** The entry the decision must name (null for default deny). */
  rule?: string | null;
  /** Address the outer reports after connecting (phase two). */
  connected?: string;
}

const AWS = ['kms.*.amazonaws.com:443', '**.s3.amazonaws.com:443'];
const ROWS: Row[] = [
  // exact names, case, trailing dot, IDN
  { allow: ['example.com'], dest: 'example.com:443', expect: 'allow', rule: 'example.com' },
  { allow: ['example.com'], dest: 'EXAMPLE.Com:443', expect: 'allow' },
  { allow: ['example.com'], dest: 'example.com.:443', expect: 'allow' },
  { allow: ['Example.COM.'], dest: 'example.com:80', expect: 'allow' },
  { allow: ['example.com'], dest: 'example.com..:443', expect: 'malformed' },
  { allow: ['example.com'], dest: 'www.example.com:443', expect: 'deny', rule: null },
  { allow: ['example.com'], dest: 'example.com.evil.net:443', expect: 'deny' },
  { allow: ['example.com'], dest: 'evilexample.com:443', expect: 'deny' },
  { allow: ['bücher.example'], dest: 'xn--bcher-kva.example:443', expect: 'allow' },
  { allow: ['xn--bcher-kva.example'], dest: 'bücher.example:443', expect: 'allow' },
  { allow: ['BÜCHER.example'], dest: 'bücher.example:443', expect: 'allow' },
  { allow: ['a.b.com'], dest: 'a\u3002b.com:443', expect: 'allow' },
  // * and **
  { allow: ['*.example.com'], dest: 'a.example.com:443', expect: 'allow' },
  { allow: ['*.example.com'], dest: 'a.b.example.com:443', expect: 'deny' },
  { allow: ['*.example.com'], dest: 'example.com:443', expect: 'deny' },
  { allow: AWS, dest: 'kms.us-east-1.amazonaws.com:443', expect: 'allow', rule: 'kms.*.amazonaws.com:443' },
  { allow: AWS, dest: 'kms.us-east-1.amazonaws.com:80', expect: 'deny' },
  { allow: AWS, dest: 'kms.a.b.amazonaws.com:443', expect: 'deny' },
  { allow: AWS, dest: 'bucket.s3.amazonaws.com:443', expect: 'allow', rule: '**.s3.amazonaws.com:443' },
  { allow: AWS, dest: 'a.b.c.s3.amazonaws.com:443', expect: 'allow' },
  { allow: AWS, dest: 's3.amazonaws.com:443', expect: 'deny' },
  { allow: ['**.amazonaws.com'], dest: 'amazonaws.com:443', expect: 'deny' },
  { allow: ['**'], dest: 'anything.at.all:1', expect: 'allow' },
  { allow: ['**'], dest: '10.0.0.1:443', expect: 'deny', rule: null },
  { allow: ['foo.*.com'], dest: 'foo.bar.com:443', expect: 'allow' },
  { allow: ['foo.*.com'], dest: 'foo.com:443', expect: 'deny' },
  // ports and ranges
  { allow: ['example.com:443'], dest: 'example.com:443', expect: 'allow' },
  { allow: ['example.com:443'], dest: 'example.com:8443', expect: 'deny' },
  { allow: ['example.com:8000-8100'], dest: 'example.com:8000', expect: 'allow' },
  { allow: ['example.com:8000-8100'], dest: 'example.com:8100', expect: 'allow' },
  { allow: ['example.com:8000-8100'], dest: 'example.com:8101', expect: 'deny' },
  { allow: ['example.com:8000-8100'], dest: 'example.com:7999', expect: 'deny' },
  // deny wins
  { allow: ['**.example.com'], deny: ['admin.example.com'], dest: 'admin.example.com:443', expect: 'deny', rule: 'admin.example.com' },
  { allow: ['**.example.com'], deny: ['admin.example.com'], dest: 'www.example.com:443', expect: 'allow' },
  { allow: ['**.example.com'], deny: ['*.example.com:22'], dest: 'a.example.com:22', expect: 'deny', rule: '*.example.com:22' },
  { allow: ['**.example.com'], deny: ['*.example.com:22'], dest: 'a.example.com:443', expect: 'allow' },
  { allow: ['10.0.0.0/8'], deny: ['10.1.0.0/16'], dest: '10.1.2.3:443', expect: 'deny', rule: '10.1.0.0/16' },
  // IP literals and CIDRs
  { allow: ['10.0.0.0/8:5432'], dest: '10.9.8.7:5432', expect: 'allow', rule: '10.0.0.0/8:5432' },
  { allow: ['10.0.0.0/8:5432'], dest: '10.9.8.7:5433', expect: 'deny' },
  { allow: ['10.0.0.0/8'], dest: '11.0.0.1:443', expect: 'deny' },
  { allow: ['93.184.216.34'], dest: '93.184.216.34:443', expect: 'allow' },
  { allow: ['2001:db8::/32'], dest: '[2001:db8::1]:443', expect: 'allow' },
  { allow: ['[2001:db8::/32]:443'], dest: '[2001:DB8:0:0::1]:443', expect: 'allow' },
  { allow: ['[2001:db8::/32]:443'], dest: '[2001:db8::1]:80', expect: 'deny' },
  { allow: ['[2001:db8::1]'], dest: '[2001:db8::2]:443', expect: 'deny' },
  { allow: ['10.0.0.0/8'], dest: 'ten.example:443', expect: 'deny', rule: null },
  { allow: ['example.com'], dest: '93.184.216.34:443', expect: 'deny' },
  // IPv4 numeric disguises are judged as the address they are
  { allow: ['**'], deny: ['127.0.0.0/8'], dest: '2130706433:80', expect: 'deny', rule: '127.0.0.0/8' },
  { allow: ['**'], deny: ['127.0.0.0/8'], dest: '0x7f.1:80', expect: 'deny' },
  { allow: ['**'], deny: ['127.0.0.0/8'], dest: '0177.0.0.1:80', expect: 'deny' },
  { allow: ['**'], deny: ['127.0.0.0/8'], dest: '127.1:80', expect: 'deny' },
  { allow: ['**'], deny: ['127.0.0.0/8'], dest: '017700000001:80', expect: 'deny' },
  { allow: ['**'], deny: ['127.0.0.0/8'], dest: '0x7f000001:80', expect: 'deny' },
  { allow: ['**'], deny: ['10.0.0.0/8'], dest: '012.0.0.1:80', expect: 'deny', rule: '10.0.0.0/8' },
  { allow: ['**'], deny: ['0.0.0.0/8'], dest: '0:80', expect: 'deny' },
  { allow: ['127.0.0.1'], dest: '2130706433:80', expect: 'allow', rule: '127.0.0.1' },
  { allow: ['**'], dest: '0x7f.1:80', expect: 'deny', rule: null },
  { allow: ['**'], dest: '1.2.3.4.5:80', expect: 'malformed' },
  { allow: ['**'], dest: '256.0.0.1:80', expect: 'malformed' },
  { allow: ['**'], dest: '0x100000000:80', expect: 'malformed' },
  { allow: ['**'], dest: '09.0.0.1:80', expect: 'malformed' },
  { allow: ['**'], dest: 'foo.0x1f:80', expect: 'malformed' },
  // IPv6 forms carrying IPv4
  { allow: ['**'], deny: ['127.0.0.0/8'], dest: '[::ffff:127.0.0.1]:80', expect: 'deny' },
  { allow: ['**'], deny: ['127.0.0.0/8'], dest: '[::fFFf:7f00:1]:80', expect: 'deny' },
  { allow: ['127.0.0.1'], dest: '[::ffff:127.0.0.1]:80', expect: 'allow' },
  { allow: ['::/0'], deny: ['169.254.0.0/16'], dest: '[::169.254.169.254]:80', expect: 'deny', rule: '169.254.0.0/16' },
  { allow: ['::/0'], deny: ['10.0.0.0/8'], dest: '[64:ff9b::10.0.0.1]:80', expect: 'deny' },
  { allow: ['::/0'], deny: ['10.0.0.0/8'], dest: '[64:ff9b:1:a00:0:100::]:80', expect: 'deny' },
  { allow: ['::/0'], deny: ['192.168.0.0/16'], dest: '[2002:c0a8:0101::1]:80', expect: 'deny' },
  { allow: ['::/0'], deny: ['10.0.0.0/8'], dest: '[2001:0:4136:e378:8000:63bf:f5ff:fffe]:80', expect: 'deny' },
  { allow: ['::/0'], deny: ['10.0.0.0/8'], dest: '[2001:db8::1]:80', expect: 'allow' },
  { allow: ['**'], deny: ['::1'], dest: '[0:0:0:0:0:0:0:1]:80', expect: 'deny' },
  { allow: ['**'], dest: '[fe80::1%eth0]:80', expect: 'malformed' },
  { allow: ['**'], dest: '[fe80::1%25eth0]:80', expect: 'malformed' },
  { allow: ['**'], dest: '::1:80', expect: 'malformed' },
  { allow: ['**'], dest: '[1:2:3:4:5:6:7:8:9]:80', expect: 'malformed' },
  { allow: ['**'], dest: '[::ffff:0x7f.1]:80', expect: 'malformed' },
  // malformed destinations are refused before any rule is consulted
  { allow: ['**'], dest: 'user@example.com:443', expect: 'malformed' },
  { allow: ['**'], dest: 'example.com\r\nX-Injected: 1:443', expect: 'malformed' },
  { allow: ['**'], dest: 'example.com\0.allowed.com:443', expect: 'malformed' },
  { allow: ['**'], dest: 'a..example.com:443', expect: 'malformed' },
  { allow: ['**'], dest: `${'a'.repeat(64)}.example.com:443`, expect: 'malformed' },
  { allow: ['**'], dest: `${'abcdefghi.'.repeat(26)}com:443`, expect: 'malformed' },
  { allow: ['**'], dest: '-bad.example.com:443', expect: 'malformed' },
  { allow: ['**'], dest: 'under_score.example.com:443', expect: 'malformed' },
  { allow: ['**'], dest: 'evil.com%2f.example.com:443', expect: 'malformed' },
  { allow: ['**'], dest: 'evil.com\\@example.com:443', expect: 'malformed' },
  { allow: ['**'], dest: 'example.com', expect: 'malformed' },
  { allow: ['**'], dest: 'example.com:', expect: 'malformed' },
  { allow: ['**'], dest: 'example.com:0', expect: 'malformed' },
  { allow: ['**'], dest: 'example.com:65536', expect: 'malformed' },
  { allow: ['**'], dest: 'example.com:0443', expect: 'malformed' },
  { allow: ['**'], dest: 'example.com:+443', expect: 'malformed' },
  { allow: ['**'], dest: 'example.com:11211aaa', expect: 'malformed' },
  { allow: ['**'], dest: '/:443', expect: 'malformed' },
  { allow: ['**'], dest: ':443', expect: 'malformed' },
  // the outer's answer: an allowed name that resolves into a denied range is cut
  {
    allow: ['**.example.com'],
    deny: ['169.254.0.0/16'],
    dest: 'meta.example.com:80',
    connected: '169.254.169.254',
    expect: 'deny',
    rule: '169.254.0.0/16',
  },
  { allow: ['**.example.com'], deny: ['10.0.0.0/8'], dest: 'db.example.com:5432', connected: '10.1.1.1', expect: 'deny' },
  { allow: ['**.example.com'], deny: ['10.0.0.0/8'], dest: 'db.example.com:5432', connected: '::ffff:10.1.1.1', expect: 'deny' },
  { allow: ['**.example.com'], deny: ['10.0.0.0/8'], dest: 'db.example.com:5432', connected: '64:ff9b::a01:101', expect: 'deny' },
  {
    allow: ['**.example.com'],
    deny: ['10.0.0.0/8:22'],
    dest: 'db.example.com:5432',
    connected: '10.1.1.1',
    expect: 'allow',
    rule: '**.example.com',
  },
  { allow: ['**.example.com'], deny: ['10.0.0.0/8'], dest: 'www.example.com:443', connected: '93.184.216.34', expect: 'allow' },
];

test(`policy table (${ROWS.length} rows)`, () => {
  assert.ok(ROWS.length >= 60);
  for (const row of ROWS) {
    const label = `${JSON.stringify(row.dest)} allow=${JSON.stringify(row.allow)} deny=${JSON.stringify(row.deny ?? [])}`;
    const policy = compilePolicy({ allow: row.allow, deny: row.deny ?? [] });
    let dest;
    try {
      dest = parseAuthority(row.dest);
    } catch (err) {
      assert.ok(err instanceof DestinationError, `${label}: unexpected ${String(err)}`);
      assert.equal(row.expect, 'malformed', `${label}: refused as malformed (${err.message})`);
      continue;
    }
    assert.notEqual(row.expect, 'malformed', `${label}: parsed as ${JSON.stringify(dest.host.text)} but should be refused`);
    let decision = decide(policy, dest);
    if (row.connected !== undefined) {
      const ip = parseIPv6(row.connected) ?? parseIPv4Any(row.connected);
      assert.ok(ip);
      decision = decideConnected(policy, dest, decision, ip);
    }
    assert.equal(decision.allowed, row.expect === 'allow', `${label}: ${JSON.stringify(decision)}`);
    if (row.rule !== undefined) assert.equal(decision.rule, row.rule, `${label}: rule`);
  }
});

test('canonical forms of hosts', () => {
  const cases: Array<[string, string]> = [
    ['2130706433', '127.0.0.1'],
    ['0x7f.1', '127.0.0.1'],
    ['0177.0.0.1', '127.0.0.1'],
    ['127.1', '127.0.0.1'],
    ['0x7F000001', '127.0.0.1'],
    ['0', '0.0.0.0'],
    ['012.0.0.1', '10.0.0.1'],
    ['0x', '0.0.0.0'],
    ['[::ffff:127.0.0.1]', '127.0.0.1'],
    ['::FFFF:7F00:1', '127.0.0.1'],
    ['[2001:DB8:0:0:0:0:0:1]', '2001:db8::1'],
    ['[::]', '::'],
    ['[1:0:0:1:0:0:0:1]', '1:0:0:1::1'],
    ['[::1.2.3.4]', '::102:304'],
    ['Example.COM.', 'example.com'],
    ['ÄÖÜ.example', 'xn--4ca0bs.example'],
  ];
  for (const [input, want] of cases) assert.equal(canonicalHost(input).text, want, input);
});

test('canonical IPv4 equals what the WHATWG URL parser makes of every legacy form', () => {
  fc.assert(
    fc.property(fc.ipV4Extended(), (text) => {
      const whatwg = new URL(`http://${text}/`).hostname;
      assert.equal(canonicalHost(text).text, whatwg);
    }),
    { numRuns: 500 },
  );
});

test('canonical IPv6 round-trips and equals the WHATWG form', () => {
  fc.assert(
    fc.property(fc.ipV6(), (text) => {
      const host = canonicalHost(`[${text}]`);
      const whatwg = new URL(`http://[${text}]/`).hostname.slice(1, -1);
      // WHATWG keeps mapped addresses as IPv6; we judge them as the IPv4 address they are.
      const mapped = /^::ffff:[0-9a-f]{1,4}:[0-9a-f]{1,4}$/.test(whatwg);
      if (!mapped) assert.equal(host.text, whatwg);
      assert.equal(canonicalHost(host.kind === 'ip' && host.ip.family === 6 ? `[${host.text}]` : host.text).text, host.text);
    }),
    { numRuns: 500 },
  );
});

test('embedded IPv4 of each IPv6 translation form', () => {
  const cases: Array<[string, string[]]> = [
    ['::ffff:a00:1', ['10.0.0.1']],
    ['::a00:1', ['10.0.0.1']],
    ['64:ff9b::a00:1', ['10.0.0.1']],
    ['64:ff9b:1:a00:0:100::', ['10.0.0.1']],
    ['2002:a00:1::', ['10.0.0.1']],
    ['2001:0:4136:e378:8000:63bf:f5ff:fffe', ['65.54.227.120', '10.0.0.1']],
    ['::1', []],
    ['::', []],
    ['2001:db8::1', []],
  ];
  for (const [text, want] of cases) assert.deepEqual(embeddedIPv4(parseIPv6(text)!).map(formatIp), want, text);
});

test('non-public ranges include every disguise of them', () => {
  for (const t of ['127.0.0.1', '10.1.2.3', '169.254.169.254', '100.64.0.1', '192.168.1.1', '224.0.0.1', '255.255.255.255', '0.0.0.0']) {
    assert.ok(isNonPublic(parseIPv4Any(t)!), t);
  }
  for (const t of [
    '::1',
    '::',
    'fe80::1',
    'fd00::1',
    'ff02::1',
    '::ffff:127.0.0.1',
    '64:ff9b::a9fe:a9fe',
    '2002:a9fe:a9fe::1',
    '2001:0:1:2:0:0:f5ff:fffe',
  ]) {
    assert.ok(isNonPublic(parseIPv6(t)!), t);
  }
  for (const t of ['93.184.216.34', '8.8.8.8']) assert.ok(!isNonPublic(parseIPv4Any(t)!), t);
  assert.ok(!isNonPublic(parseIPv6('2606:4700::1111')!));
});

test('invalid policy entries are config errors that name the entry', () => {
  const bad: Array<[string, RegExp]> = [
    ['', /empty entry/],
    ['example.com:0', /port/],
    ['example.com:9-8', /port/],
    ['example.com:70000', /port/],
    ['ex ample.com', /whitespace/],
    ['a..b', /label/],
    ['s3-*.amazonaws.com', /label/],
    ['10.0.0.0/33', /CIDR/],
    ['127.1', /a\.b\.c\.d/],
    ['[::1', /unterminated/],
    ['under_score.com', /label/],
  ];
  for (const [entry, msg] of bad) {
    assert.throws(
      () => compilePolicy({ allow: ['ok.example', entry] }),
      (err: unknown) => {
        assert.ok(err instanceof PolicyRuleError, entry);
        assert.match(err.message, /^egress\.allow\[1\] /);
        assert.match(err.message, msg, entry);
        return true;
      },
    );
  }
});
