import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { encodeFrame, FrameDecoder, FrameError, FrameType, MAX_PAYLOAD, parseFrame } from '../../../shared/wire/frame.js';

test('frames round-trip, split at every byte boundary', () => {
  const a = encodeFrame(FrameType.Status, { state: 'running', pid: 42 });
  const b = encodeFrame(FrameType.EgressRequest, { host: 'kms.eu-west-1.amazonaws.com', port: 443, conn_id: 'x-1' });
  const all = Buffer.concat([a, b]);
  for (let cut = 0; cut <= all.length; cut++) {
    const d = new FrameDecoder();
    const frames = [...d.push(all.subarray(0, cut)), ...d.push(all.subarray(cut))];
    assert.deepEqual(frames, [
      { type: FrameType.Status, payload: { state: 'running', pid: 42 } },
      { type: FrameType.EgressRequest, payload: { host: 'kms.eu-west-1.amazonaws.com', port: 443, conn_id: 'x-1' } },
    ]);
    assert.equal(d.pending, 0);
  }
});

test('a truncated frame is pending, not a frame', () => {
  const f = encodeFrame(FrameType.Status, { state: 'starting' });
  const d = new FrameDecoder();
  assert.deepEqual(d.push(f.subarray(0, f.length - 1)), []);
  assert.equal(d.pending, f.length - 1);
});

test('bad frames are refused with a code', () => {
  const f = encodeFrame(FrameType.Status, { state: 'starting' });
  const cases: [Buffer, string][] = [
    [Buffer.concat([Buffer.from([2]), f.subarray(1)]), 'frame_version'],
    [Buffer.concat([Buffer.from([1, 200]), f.subarray(2)]), 'frame_type'],
    [
      (() => {
        const x = Buffer.from(f);
        x.writeUInt32BE(MAX_PAYLOAD + 1, 2);
        return x;
      })(),
      'frame_too_large',
    ],
    [Buffer.concat([f.subarray(0, 2), Buffer.from([0, 0, 0, 3]), Buffer.from('{x}')]), 'frame_json'],
    [Buffer.concat([f.subarray(0, 2), Buffer.from([0, 0, 0, 2]), Buffer.from('[]')]), 'frame_json'],
  ];
  for (const [buf, code] of cases)
    assert.throws(
      () => parseFrame(buf),
      (e: unknown) => e instanceof FrameError && e.code === code,
      code,
    );
  assert.throws(
    () => encodeFrame(FrameType.Log, { line: 'x'.repeat(MAX_PAYLOAD) }),
    (e: unknown) => e instanceof FrameError && e.code === 'frame_too_large',
  );
});

test('fuzz: arbitrary bytes yield frames or a FrameError, never anything else', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
      const d = new FrameDecoder();
      try {
        for (const fr of d.push(Buffer.from(bytes))) assert.equal(typeof fr.payload, 'object');
      } catch (err) {
        assert.ok(err instanceof FrameError, String(err));
      }
    }),
    { numRuns: 3000 },
  );
});
