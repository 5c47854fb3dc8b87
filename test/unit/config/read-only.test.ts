/**
 * The loaded config is read-only: by type (a write to any slice fails to compile, proved by the
 * `@ts-expect-error` lines, which fail the build the day the write compiles) and at run time (the
 * object is frozen once at load, maps and sets included, so a write through a cast throws).
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../../shared/config/load.js';
import type { Config, EgressListenerConfig, InnerConfig } from '../../../shared/config/types.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');

function demo(): { config: Config; inner: InnerConfig } {
  const config = loadConfig(path.join(ROOT, 'configs/local-demo.yaml'));
  assert.equal(config.role, 'local');
  return { config, inner: config.inner };
}

/** Writes that must not compile; never called (the run-time twins are below). */
function writesThatDoNotCompile(inner: InnerConfig, egress: EgressListenerConfig): void {
  // @ts-expect-error a listener's name is read-only
  inner.listeners[0].name = 'other';
  // @ts-expect-error the listener list is read-only
  inner.listeners.push(inner.listeners[0]);
  // @ts-expect-error the cluster map has no set()
  inner.clusters.set('x', inner.clusters.get('app'));
  // @ts-expect-error an egress rule list is read-only
  egress.policy.allow.length = 0;
  // @ts-expect-error a nested section is read-only
  inner.admin.maxConnections = 1;
}

void writesThatDoNotCompile;

describe('the loaded config is frozen', () => {
  test('a field, a list and a nested section refuse writes (TypeError in strict mode)', () => {
    const { config, inner } = demo();
    assert.ok(Object.isFrozen(config));
    const listener = inner.listeners[0] as { name: string };
    assert.throws(() => {
      listener.name = 'other';
    }, TypeError);
    assert.throws(() => (inner.listeners as unknown[]).push({}), TypeError);
    assert.throws(() => {
      (inner.admin as { maxConnections: number }).maxConnections = 1;
    }, TypeError);
    assert.equal(inner.listeners[0]?.name, 'web');
  });

  test('maps refuse set, delete and clear, and keep their entries', () => {
    const { inner } = demo();
    const clusters = inner.clusters as Map<string, unknown>;
    const before = [...clusters.keys()];
    assert.throws(() => clusters.set('x', {}), /the loaded config is read-only \(Map\.set\)/);
    assert.throws(() => clusters.delete('app'), /read-only \(Map\.delete\)/);
    assert.throws(() => clusters.clear(), /read-only \(Map\.clear\)/);
    assert.deepEqual([...clusters.keys()], before);
    assert.ok(clusters.get('app'), 'reads still work');
  });

  test('egress rules deep inside the config are frozen too', () => {
    const { inner } = demo();
    const egress = inner.listeners.find((l) => l.kind === 'egress');
    assert.ok(egress && egress.kind === 'egress');
    const rules = egress.egress.policy.allow;
    assert.ok(rules.length > 0);
    assert.ok(Object.isFrozen(rules));
    assert.ok(rules.every((r) => Object.isFrozen(r)));
  });
});
