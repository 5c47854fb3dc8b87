/**
 * A start-up that fails part way leaves nothing behind: the outer opens its channels (status,
 * logs, audit, egress relay, IMDS relay) before its listeners, so a listener that cannot bind
 * fails after those are open. Every one of them must be closed again (the closer stack), or a
 * supervisor that restarts the outer would find its own ports taken.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, test } from 'node:test';
import type { OuterConfig } from '../../shared/config/types.js';
import { startOuter } from '../../proxy-outer/main.js';
import { loadText } from '../helpers/config.js';
import { freePort } from '../helpers/ports.js';
import { tempDir } from '../helpers/process.js';

const dir = tempDir();
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function refused(connect: () => net.Socket): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect();
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(true));
  });
}

const servers = () => process.getActiveResourcesInfo().filter((r) => r === 'TCPServerWrap' || r === 'PipeServerWrap').length;

test('an outer whose listener cannot bind closes every channel it had opened', async () => {
  const before = servers();
  const busy = net.createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  const busyPort = (busy.address() as net.AddressInfo).port;
  const adminPort = await freePort();
  const emulation = path.join(dir, 'vsock');
  fs.mkdirSync(emulation);
  const config = loadText(
    `role: outer
admin: { address: "tcp://127.0.0.1:${adminPort}" }
vsock: { emulation_dir: ${emulation} }
egress_relay: {}
imds_relay: {}
listeners:
  - { name: web, address: "tcp://127.0.0.1:${busyPort}", cluster: enclave }
clusters:
  - { name: enclave, endpoints: ["vsock://16:8443"] }
`,
    {},
    path.join(dir, 'proxy.yaml'),
  ) as OuterConfig;
  await assert.rejects(startOuter(config), /EADDRINUSE|address already in use/i);
  await new Promise((resolve) => busy.close(resolve));
  // The channels were open (their sockets exist or existed); none accepts now.
  const channels = fs.readdirSync(emulation).filter((f) => f.endsWith('.sock'));
  for (const f of channels) assert.ok(await refused(() => net.connect(path.join(emulation, f))), `${f} still accepts`);
  assert.ok(await refused(() => net.connect({ host: '127.0.0.1', port: adminPort })), 'the admin endpoint still accepts');
  // A closed server's handle leaves Node's resource list when its close completes (a later turn of
  // the loop on Node 22+); wait for that, bounded, rather than read the list at one instant.
  for (let i = 0; i < 1000 && servers() !== before; i++) await new Promise((r) => setTimeout(r, 5));
  assert.equal(servers(), before, 'a listening server is left in this process');
});
