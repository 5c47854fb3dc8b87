/**
 * The VM harness loads the guest's kernel modules in dependency order read from each module's
 * `.modinfo` (`depends=`): checked on synthetic module files, so no kernel download is needed.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadOrder, moduleDepends } from '../../vm/kernel.js';
import { tempDir } from '../../helpers/process.js';

/** A stand-in .ko: some bytes, then the .modinfo strings the kernel build writes. */
function fakeModule(depends: string): Buffer {
  return Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 0]), Buffer.from(`license=GPL\0depends=${depends}\0vermagic=6.1.0 SMP\0`)]);
}

describe('guest kernel modules', () => {
  it('reads depends= (empty, one, several)', () => {
    assert.deepEqual(moduleDepends(fakeModule('')), []);
    assert.deepEqual(moduleDepends(fakeModule('vsock')), ['vsock']);
    assert.deepEqual(moduleDepends(fakeModule('9pnet,fscache,netfs')), ['9pnet', 'fscache', 'netfs']);
    assert.deepEqual(moduleDepends(Buffer.from('no modinfo here')), []);
  });

  it('orders modules dependencies first, each once, and names a missing one', () => {
    const dir = tempDir('ko-');
    const mods = new Map<string, string>();
    const add = (name: string, deps: string) => {
      const file = path.join(dir, `${name}.ko`);
      fs.writeFileSync(file, fakeModule(deps));
      mods.set(name, file);
    };
    add('vsock', '');
    add('vmw_vsock_virtio_transport_common', 'vsock');
    add('vsock_loopback', 'vsock,vmw_vsock_virtio_transport_common');
    add('netfs', '');
    add('fscache', 'netfs');
    add('9pnet', '');
    add('9p', '9pnet,fscache,netfs');
    add('virtio-rng', 'vsock');
    assert.deepEqual(loadOrder(['vsock_loopback', '9p', 'virtio_rng'], mods), [
      'vsock',
      'vmw_vsock_virtio_transport_common',
      'vsock_loopback',
      '9pnet',
      'netfs',
      'fscache',
      '9p',
      'virtio_rng',
    ]);
    assert.throws(() => loadOrder(['virtio_pci'], mods), /kernel module virtio_pci not found/);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
