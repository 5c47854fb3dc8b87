/**
 * The parent CID: configurable (vsock.parent_cid, default 3), 1 accepted for the loopback transport,
 * 2 (the hypervisor host) refused everywhere, and the inner's channels dial whatever is configured.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { InnerConfig, OuterConfig } from '../../../shared/config/types.js';
import { configureSideVsock } from '../../../shared/runtime/side-runtime.js';
import { configureVsock, parentChannel, vsockSettings } from '../../../shared/transport/vsock.js';
import { configProblems, loadText } from '../../helpers/config.js';

const INNER = 'role: inner\nlisteners: []\n';

describe('vsock.parent_cid and CID 1', () => {
  const saved = { ...vsockSettings() };
  after(() => configureVsock(saved));

  it('defaults to 3 (the parent on Nitro) when neither config nor environment says', () => {
    const c = loadText(INNER) as InnerConfig;
    assert.equal(c.vsock.parentCid, undefined);
    configureSideVsock(c);
    assert.deepEqual(
      parentChannel(17000),
      process.env.ENCLAVER_VSOCK_PARENT_CID
        ? { kind: 'vsock', cid: Number(process.env.ENCLAVER_VSOCK_PARENT_CID), port: 17000 }
        : { kind: 'vsock', cid: 3, port: 17000 },
    );
  });

  it('parent_cid: 1 makes every channel of the inner dial CID 1', () => {
    const c = loadText(`${INNER}vsock: { parent_cid: 1 }\n`) as InnerConfig;
    assert.equal(c.vsock.parentCid, 1);
    configureSideVsock(c);
    for (const port of [17000, 17001, 17002, 17003, 17004]) assert.deepEqual(parentChannel(port), { kind: 'vsock', cid: 1, port });
  });

  it('the outer accepts enclave.cid 1 (both sides on one loopback transport)', () => {
    const c = loadText('role: outer\nenclave: { cid: 1 }\nlisteners: []\n') as OuterConfig;
    assert.equal(c.enclave.cid, 1);
  });

  it('refuses CID 2 (the hypervisor host) with the fix, wherever it is written', () => {
    for (const [text, where] of [
      [`${INNER}vsock: { parent_cid: 2 }\n`, 'vsock.parent_cid'],
      [`${INNER}vsock: { cid: 2 }\n`, 'vsock.cid'],
      ['role: outer\nenclave: { cid: 2 }\nlisteners: []\n', 'enclave.cid'],
    ] as const) {
      const problems = configProblems(text);
      assert.equal(problems.length, 1, problems.join('\n'));
      assert.match(
        problems[0]!,
        new RegExp(
          `^proxy\\.yaml:[0-9]+:[0-9]+: ${where.replace('.', '\\.')}: CID 2 is the hypervisor host.*use 3 for the parent on Nitro, 1 for a vsock loopback transport`,
        ),
      );
    }
  });

  it('refuses parent_cid on the outer (the outer is the parent)', () => {
    const problems = configProblems('role: outer\nvsock: { parent_cid: 1 }\nlisteners: []\n');
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /vsock\.parent_cid: `vsock\.parent_cid` belongs to the inner side/);
  });
});
