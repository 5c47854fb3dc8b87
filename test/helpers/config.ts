/** Loading config text in tests: the normalized config, or the formatted problems of a refused one. */
import assert from 'node:assert/strict';
import { loadConfigSource, type LoadOptions } from '../../shared/config/load.js';
import { ConfigSource } from '../../shared/config/source.js';
import type { Config, ListenerConfig, ListenerKind, ListenerOf } from '../../shared/config/types.js';
import { ConfigError, formatProblem } from '../../shared/errors/index.js';

export function loadText(text: string, opts: LoadOptions = {}, file = 'proxy.yaml'): Config {
  return loadConfigSource(ConfigSource.parse(file, text), opts);
}

/** The formatted problems of a config that must be refused. */
export function configProblems(text: string, opts: LoadOptions = {}, file = 'proxy.yaml'): string[] {
  try {
    loadText(text, opts, file);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err.problems.map(formatProblem);
  }
  assert.fail('config was accepted');
}

/** The first listener of a kind, narrowed to it (fails the test when there is none). */
export function listenerOf<K extends ListenerKind>(side: { listeners: readonly ListenerConfig[] }, kind: K): ListenerOf<K> {
  const l = side.listeners.find((x): x is ListenerOf<K> => x.kind === kind);
  assert.ok(l, `no ${kind} listener`);
  return l;
}
