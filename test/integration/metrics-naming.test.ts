/**
 * Both sides' /metrics as Prometheus reads them: `promtool check metrics` (Debian's prometheus
 * package) finds no problem, and the project's own conventions hold: one `enclaver_` prefix,
 * counters and only counters end in `_total`, one vocabulary for byte directions, HELP texts that
 * name every value the code emits for an enumerated label, connection-duration and handshake
 * histograms per listener, and on the outer the relay, audit collector and enclave-state series.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { metricValue, startPair, type Pair } from '../helpers/pair.js';
import { FIXTURES } from '../helpers/paths.js';

interface Family {
  name: string;
  type: string;
  help: string;
  samples: { name: string; labels: Record<string, string>; value: number }[];
}

/** Prometheus text format → metric families (enough of the format for what prom-client writes). */
function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const family = (name: string) => families.get(name) ?? families.set(name, { name, type: 'untyped', help: '', samples: [] }).get(name)!;
  let current: Family | undefined;
  for (const line of text.split('\n')) {
    const meta = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
    if (meta) {
      current = family(meta[2]!);
      if (meta[1] === 'HELP') current.help = meta[3]!;
      else current.type = meta[3]!;
      continue;
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!sample || !current) continue;
    const labels: Record<string, string> = {};
    for (const m of (sample[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[m[1]!] = m[2]!;
    current.samples.push({ name: sample[1]!, labels, value: Number(sample[3]) });
  }
  return families;
}

/** Labels whose values are a closed set the HELP text lists; the others (listener, code, route…) are open. */
const ENUMERATED_LABELS = ['direction', 'reason', 'outcome', 'result', 'state', 'decision', 'proto', 'status'];

function checkConventions(text: string, side: string): Map<string, Family> {
  const families = parseExposition(text);
  assert.ok(families.size > 20, `${side}: metrics were served`);
  for (const f of families.values()) {
    assert.match(f.name, /^enclaver_[a-z0-9_]+$/, `${side}: ${f.name} has the one enclaver_ prefix`);
    assert.doesNotMatch(
      f.name,
      /^enclaver_(process|nodejs)_\1_|^enclaver_enclaver_|^enclaver_process_(process|nodejs)_/,
      `${side}: ${f.name}: doubled prefix`,
    );
    assert.ok(f.help.length > 0, `${side}: ${f.name} has a HELP text`);
    if (f.type === 'counter') assert.match(f.name, /_total$/, `${side}: counter ${f.name} ends in _total`);
    else assert.doesNotMatch(f.name, /_total$/, `${side}: ${f.type} ${f.name} must not end in _total`);
    assert.doesNotMatch(f.name, /_(ms|milliseconds|kb|mb)(_|$)/, `${side}: ${f.name} uses base units`);
    for (const s of f.samples) {
      for (const label of ENUMERATED_LABELS) {
        const value = s.labels[label];
        if (value === undefined || (label === 'reason' && f.name === 'enclaver_egress_attempts_total')) continue;
        assert.ok(f.help.includes(value), `${side}: ${f.name}{${label}="${value}"}: the HELP text names the values it has: ${f.help}`);
      }
      if (s.labels.direction !== undefined)
        assert.ok(['client_to_upstream', 'upstream_to_client'].includes(s.labels.direction), `${side}: ${s.name}: direction vocabulary`);
    }
  }
  return families;
}

function promtool(text: string): { skipped: string } | { problems: string } {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  if (r.error) return { skipped: 'promtool not installed (Debian package prometheus)' };
  return { problems: `${r.stdout}${r.stderr}`.trim() };
}

describe('metrics: names and content, both sides', () => {
  let pair: Pair;
  before(async () => {
    // The JS accept path: connections carried whole by the native fast path have no handshake in JS to time.
    pair = await startPair({
      app: [process.execPath, `${FIXTURES}/apps/env-app.mjs`],
      readyLine: /env-app listening/,
      env: { ENCLAVER_FASTPATH: '0' },
    });
    // One connection through the pair, so the per-listener histograms have an observation.
    await new Promise<void>((resolve, reject) => {
      const s = net.connect(pair.ingressPort, '127.0.0.1');
      s.on('error', reject);
      s.resume();
      s.on('end', () => {
        s.end();
        resolve();
      });
    });
  });
  after(async () => {
    await pair.stop();
  });

  async function settled(side: 'outer' | 'inner'): Promise<string> {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const text = await pair.metrics(side);
      if (metricValue(text, 'enclaver_connection_duration_seconds_count{listener="web"}') === 1) return text;
      if (Date.now() > deadline) throw new Error(`${side}: the connection never closed in the metrics\n${text}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  for (const side of ['outer', 'inner'] as const) {
    test(`${side} /metrics passes promtool check metrics`, async (t) => {
      const r = promtool(await settled(side));
      if ('skipped' in r) {
        t.skip(r.skipped);
        return;
      }
      assert.equal(r.problems, '', `promtool found problems on the ${side}:\n${r.problems}`);
    });

    test(`${side} /metrics follows the naming conventions and has per-listener histograms`, async () => {
      const families = checkConventions(await settled(side), side);
      for (const name of ['enclaver_connection_duration_seconds', 'enclaver_handshake_duration_seconds']) {
        const f = families.get(name);
        assert.equal(f?.type, 'histogram', `${side}: ${name} is a histogram`);
        const count = f.samples.find((s) => s.name === `${name}_count` && s.labels.listener === 'web');
        assert.equal(count?.value, 1, `${side}: ${name}{listener="web"} observed the one connection`);
      }
      assert.equal(families.get('enclaver_process_cpu_seconds_total')?.type, 'counter');
    });
  }

  test('the outer reports the relay, the audit collector and the enclave state', async () => {
    const families = parseExposition(await settled('outer'));
    for (const name of [
      'enclaver_relay_tunnels_total',
      'enclaver_relay_tunnels_active',
      'enclaver_relay_connect_duration_seconds',
      'enclaver_audit_records_received_total',
      'enclaver_audit_records_acknowledged_total',
      'enclaver_audit_records_written_total',
      'enclaver_audit_sink_errors_total',
      'enclaver_enclave_up',
      'enclaver_enclave_state',
    ]) {
      assert.ok(families.has(name), `outer has ${name}`);
    }
    assert.equal(families.get('enclaver_enclave_up')!.samples[0]!.value, 1, 'the local enclave reported its app running');
    const states = families.get('enclaver_enclave_state')!.samples;
    assert.deepEqual(
      states.filter((s) => s.value === 1).map((s) => s.labels.state),
      ['running'],
    );
  });

  test("the inner does not list the outer's series", async () => {
    const families = parseExposition(await settled('inner'));
    assert.ok(![...families.keys()].some((n) => /^enclaver_(relay|enclave)_|^enclaver_audit_records_/.test(n)));
  });
});
