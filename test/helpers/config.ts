/** Loading config text in tests: the normalized config, or the formatted problems of a refused one. */
import assert from 'node:assert/strict';
import { loadConfigSource, type LoadOptions } from '../../shared/config/load.js';
import { ConfigSource } from '../../shared/config/source.js';
import type { Config } from '../../shared/config/types.js';
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
