/**
 * The egress policy: `allow` and `deny` lists, default deny, deny wins.
 *
 * Entries (Enclaver's syntax, plus ports):
 *   - hostnames, matched label by label from the right, case-insensitively, in punycode;
 *     `*` is exactly one label, `**` one or more (and, as in Enclaver, ends the comparison:
 *     `**.amazonaws.com` matches `kms.us-east-1.amazonaws.com` but not `amazonaws.com`);
 *   - IPv4/IPv6 addresses and CIDRs (`10.0.0.0/8`, `fd00::/8`, `[2001:db8::/32]:443`);
 *   - an optional port or port range after a colon (`host:443`, `host:8000-8100`); no port means
 *     any port, as in Enclaver.
 *
 * Names are judged by name rules only; IP destinations, and the address the outer actually
 * connected to, by CIDR rules only (an IP rule never admits a name, as in Enclaver). The address
 * a name resolved to is checked against the deny CIDRs before a byte flows.
 */
import { domainToASCII } from 'node:url';
import { ProxyError } from '../errors/index.js';
import type { Destination } from './destination.js';
import { addressesToJudge, cidrContains, IPV4_LOOPBACK, parseCidr, unmapIp, type IpAddress, type IpCidr } from './ip.js';
import { itemAt, lastOf } from '../util/checked.js';

export interface PortRange {
  from: number;
  to: number;
}

interface RuleBase {
  /** The entry as written in the config: what audit records name as `rule`. */
  text: string;
  ports: PortRange | null;
}
export type Rule =
  | (RuleBase & { kind: 'name'; /** labels, left to right; `*` and `**` are wildcards */ labels: readonly string[] })
  | (RuleBase & { kind: 'cidr'; cidr: IpCidr });

export interface EgressPolicy {
  allow: readonly Rule[];
  deny: readonly Rule[];
}

export interface PolicyLists {
  allow?: readonly string[];
  deny?: readonly string[];
}

/** Why a decision came out as it did; stable strings for audit `reason` and metric labels. */
export type DecisionReason = 'allowed_by_rule' | 'denied_by_rule' | 'not_in_allow_list' | 'resolved_address_denied';

export interface Decision {
  allowed: boolean;
  /** The entry that decided, or null when nothing matched (default deny). */
  rule: string | null;
  reason: DecisionReason;
}

export class PolicyRuleError extends ProxyError {
  constructor(list: 'allow' | 'deny', index: number, rule: string, reason: string) {
    super('egress_rule_invalid', `egress.${list}[${index}] "${rule}": ${reason}`, { list, index, rule, reason });
  }
}

const LABEL = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/;

function parsePorts(text: string): PortRange | string {
  const m = /^([1-9][0-9]{0,4})(?:-([1-9][0-9]{0,4}))?$/.exec(text);
  if (!m) return 'port must be N or N-M with 1 ≤ N ≤ M ≤ 65535';
  const from = Number(m[1]);
  const to = m[2] === undefined ? from : Number(m[2]);
  if (from > 65535 || to > 65535 || from > to) return 'port must be N or N-M with 1 ≤ N ≤ M ≤ 65535';
  return { from, to };
}

/** Split an entry into its host part and its optional port part. */
function splitPort(entry: string): { host: string; port: string | null } | string {
  if (entry.startsWith('[')) {
    const close = entry.indexOf(']');
    if (close < 0) return 'unterminated [';
    const after = entry.slice(close + 1);
    if (after !== '' && !after.startsWith(':')) return 'expected :PORT after ]';
    return { host: entry.slice(1, close), port: after === '' ? null : after.slice(1) };
  }
  const colons = entry.split(':').length - 1;
  // More than one colon is an IPv6 address or CIDR, which can only carry a port inside brackets.
  if (colons !== 1) return { host: entry, port: null };
  const i = entry.indexOf(':');
  return { host: entry.slice(0, i), port: entry.slice(i + 1) };
}

function parseNamePattern(host: string): string[] | string {
  let name = host.endsWith('.') ? host.slice(0, -1) : host;
  if (name === '') return 'empty host';
  const labels = name.split('.');
  const converted: string[] = [];
  for (const raw of labels) {
    if (raw === '*' || raw === '**') {
      converted.push(raw);
      continue;
    }
    // Entries are compared in punycode, like destinations (an IDN entry and an IDN host meet there).
    const label = /[\u0080-\uffff]/.test(raw) ? domainToASCII(raw) : raw;
    if (label === '' || label.length > 63 || !LABEL.test(label)) return `"${raw}" is not a valid label, * or **`;
    converted.push(label);
  }
  name = converted.join('.');
  if (name.length > 253) return 'name is longer than 253 bytes';
  const last = lastOf(converted, 'name label');
  if (/^[0-9]+$/.test(last)) return 'not a valid address or CIDR (write IPv4 rules as a.b.c.d or a.b.c.d/n)';
  return converted;
}

/** `::ffff:10.0.0.0/104` is the IPv4 rule 10.0.0.0/8: destinations are unmapped the same way. */
function unmapCidr(c: IpCidr): IpCidr {
  const address = unmapIp(c.address);
  if (address.family === c.address.family || c.prefix < 96) return c;
  return { address, prefix: Math.max(0, c.prefix - 96) };
}

export function parseRule(list: 'allow' | 'deny', index: number, text: string): Rule {
  const entry = text.trim().toLowerCase();
  if (entry === '') throw new PolicyRuleError(list, index, text, 'empty entry');
  if (/[\s\0]/.test(entry)) throw new PolicyRuleError(list, index, text, 'whitespace or NUL inside the entry');
  const split = splitPort(entry);
  if (typeof split === 'string') throw new PolicyRuleError(list, index, text, split);
  let ports: PortRange | null = null;
  if (split.port !== null) {
    const p = parsePorts(split.port);
    if (typeof p === 'string') throw new PolicyRuleError(list, index, text, p);
    ports = p;
  }
  const cidr = parseCidr(split.host);
  if (cidr) return { kind: 'cidr', text, ports, cidr: unmapCidr(cidr) };
  if (split.host.includes('/') || split.host.includes(':')) throw new PolicyRuleError(list, index, text, 'not a valid address or CIDR');
  const labels = parseNamePattern(split.host);
  if (typeof labels === 'string') throw new PolicyRuleError(list, index, text, labels);
  return { kind: 'name', text, ports, labels };
}

export function compilePolicy(lists: PolicyLists): EgressPolicy {
  return {
    allow: (lists.allow ?? []).map((t, i) => parseRule('allow', i, t)),
    deny: (lists.deny ?? []).map((t, i) => parseRule('deny', i, t)),
  };
}

/** Label-by-label from the right; `**` consumes the rest (at least one label). */
export function nameMatches(pattern: readonly string[], name: string): boolean {
  const host = name.split('.');
  let h = host.length - 1;
  for (let p = pattern.length - 1; p >= 0; p--, h--) {
    const want = itemAt(pattern, p, 'name pattern label');
    if (want === '**') return h >= 0;
    if (h < 0) return false;
    if (want !== '*' && want !== host[h]) return false;
  }
  return h < 0;
}

function portMatches(rule: Rule, port: number): boolean {
  return rule.ports === null || (port >= rule.ports.from && port <= rule.ports.to);
}

function ruleMatchesName(rule: Rule, name: string, port: number): boolean {
  return rule.kind === 'name' && portMatches(rule, port) && nameMatches(rule.labels, name);
}

function ruleMatchesAddress(rule: Rule, ip: IpAddress, port: number): boolean {
  return rule.kind === 'cidr' && portMatches(rule, port) && cidrContains(rule.cidr, ip);
}

/** The first deny CIDR that covers this address or any IPv4 address hidden in it. */
function deniedAddress(policy: EgressPolicy, ip: IpAddress, port: number): Rule | undefined {
  const judged = addressesToJudge(ip);
  return policy.deny.find((r) => judged.some((a) => ruleMatchesAddress(r, a, port)));
}

/** The decision before any connection: on the destination as the client named it. */
export function decide(policy: EgressPolicy, dest: Destination): Decision {
  if (dest.host.kind === 'name') {
    const name = dest.host.text;
    const denied = policy.deny.find((r) => ruleMatchesName(r, name, dest.port));
    if (denied) return { allowed: false, rule: denied.text, reason: 'denied_by_rule' };
    const allowed = policy.allow.find((r) => ruleMatchesName(r, name, dest.port));
    if (allowed) return { allowed: true, rule: allowed.text, reason: 'allowed_by_rule' };
    return { allowed: false, rule: null, reason: 'not_in_allow_list' };
  }
  const ip = dest.host.ip;
  const denied = deniedAddress(policy, ip, dest.port);
  if (denied) return { allowed: false, rule: denied.text, reason: 'denied_by_rule' };
  // Allow rules admit the address itself; a disguised IPv4 inside it must be allowed as itself.
  const allowed = policy.allow.find((r) => ruleMatchesAddress(r, unmapIp(ip), dest.port));
  if (allowed) return { allowed: true, rule: allowed.text, reason: 'allowed_by_rule' };
  return { allowed: false, rule: null, reason: 'not_in_allow_list' };
}

/**
 * The decision after the outer connected: the address it reports is checked against the deny
 * CIDRs, so an allowed name that resolves into a denied range is cut before a byte flows. An
 * allowed destination keeps its original rule.
 */
export function decideConnected(policy: EgressPolicy, dest: Destination, first: Decision, connected: IpAddress): Decision {
  if (!first.allowed) return first;
  const denied = deniedAddress(policy, connected, dest.port);
  if (denied) return { allowed: false, rule: denied.text, reason: 'resolved_address_denied' };
  return first;
}

/** Enclaver's name for the parent instance itself: the outer connects it to its own loopback. */
export const PARENT_HOST = 'host';
const PARENT_LOOPBACK: IpCidr = { address: IPV4_LOOPBACK, prefix: 32 };

/**
 * The address ranges this policy allows explicitly for a destination's port — its CIDR allow
 * entries — plus the parent's loopback when the destination is Enclaver's `host` and an allow
 * entry names `host` itself (a wildcard such as `**` never does). The outer's private-address
 * guard lets a tunnel reach non-public addresses inside these, and only these: it exists against
 * names that resolve somewhere private (rebinding), not against ranges the policy names, which
 * the app could reach as IP literals anyway.
 */
export function explicitRanges(policy: EgressPolicy, dest: Destination): IpCidr[] {
  const ranges: IpCidr[] = [];
  for (const r of policy.allow) {
    if (!portMatches(r, dest.port)) continue;
    if (r.kind === 'cidr') ranges.push(r.cidr);
    else if (dest.host.text === PARENT_HOST && r.labels.length === 1 && r.labels[0] === PARENT_HOST) ranges.push(PARENT_LOOPBACK);
  }
  return ranges;
}
