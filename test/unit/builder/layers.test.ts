/**
 * A build that stops in the middle of a layer releases the layer's source (a file handle, a
 * registry response) instead of leaving it to the garbage collector: Node ≥ 26 ends the process
 * with ERR_INVALID_STATE for a FileHandle closed by GC, so the builder's own error never printed.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { describe, it } from 'node:test';
import { FlatTree } from '../../../builder/image/flatten.js';
import { applyLayers } from '../../../builder/image/layers.js';
import type { ImageLayer, ResolvedImage } from '../../../builder/image/model.js';
import { tarOf } from '../../helpers/images.js';

/** A layer whose source says when it has been closed (its `finally` ran). */
function trackedLayer(stored: Buffer, diffId: string | undefined): { layer: ImageLayer; closed: Promise<void> } {
  let markClosed!: () => void;
  const closed = new Promise<void>((resolve) => (markClosed = resolve));
  const digest = `sha256:${crypto.createHash('sha256').update(stored).digest('hex')}`;
  const layer: ImageLayer = {
    index: 0,
    digest,
    diffId: diffId ?? digest,
    name: 'layer 1/1',
    size: stored.length,
    file: undefined,
    async *open() {
      try {
        for (let at = 0; at < stored.length; at += 64 * 1024) yield stored.subarray(at, at + 64 * 1024);
      } finally {
        markClosed();
      }
    },
  };
  return { layer, closed };
}

const image = (layer: ImageLayer): ResolvedImage => ({ text: 'test', name: 'test', configDigest: 'sha256:0', config: {}, layers: [layer] });

describe('a layer refused part-way', () => {
  // The refused entry comes first and megabytes of incompressible body follow, so the source is
  // far from its end (and read-ahead cannot exhaust it) when the tree throws.
  const tar = tarOf([
    { path: 'shadow', type: 'hardlink', link: 'etc/shadow' },
    { path: 'big', data: crypto.randomBytes(4 * 1024 * 1024).toString('latin1') },
  ]);
  const diffId = `sha256:${crypto.createHash('sha256').update(tar).digest('hex')}`;

  for (const [kind, stored, diff] of [
    ['uncompressed', tar, undefined],
    ['gzip', zlib.gzipSync(tar, { level: 1 }), diffId],
  ] as const) {
    it(`closes its ${kind} source and reports the entry`, async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'layers-'));
      const tree = await FlatTree.create(path.join(dir, 'spool'));
      const { layer, closed } = trackedLayer(stored, diff);
      try {
        await assert.rejects(applyLayers(image(layer), tree), /hard link "shadow" → "etc\/shadow" does not point at a regular file/);
        // Without the fix this promise never settles and the runner fails the test as pending.
        await closed;
      } finally {
        await tree.close();
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
