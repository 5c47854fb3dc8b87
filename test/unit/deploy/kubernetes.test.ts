/**
 * The Kubernetes manifests in configs/kubernetes/ are valid against the Kubernetes OpenAPI schemas
 * (kubernetes-models' validators: types, required fields, enums), and keep the properties the
 * deployment docs promise: the device plugin's resource instead of privileged pods, hugepages
 * requested = limited and mounted, probes on a declared port. The systemd unit is checked for the
 * lifecycle settings the docs describe.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { DaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { Service } from 'kubernetes-models/v1/Service';
import { ROOT } from '../../helpers/paths.js';

const DIR = path.join(ROOT, 'configs/kubernetes');
const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'apps/v1/DaemonSet': DaemonSet as never,
  'apps/v1/Deployment': Deployment as never,
  'v1/Service': Service as never,
};

/* eslint-disable @typescript-eslint/no-explicit-any -- manifests are checked field by field below */
function manifests(): { file: string; doc: any }[] {
  const out: { file: string; doc: any }[] = [];
  for (const file of fs.readdirSync(DIR).filter((f) => f.endsWith('.yaml'))) {
    for (const d of parseAllDocuments(fs.readFileSync(path.join(DIR, file), 'utf8'))) {
      assert.deepEqual(d.errors, [], `${file}: YAML errors`);
      out.push({ file, doc: d.toJS() });
    }
  }
  return out;
}

describe('configs/kubernetes', () => {
  const all = manifests();

  it('every manifest validates against its Kubernetes schema', () => {
    assert.ok(all.length >= 3);
    for (const { file, doc } of all) {
      const Model = MODELS[`${doc.apiVersion}/${doc.kind}`];
      assert.ok(Model, `${file}: ${doc.apiVersion} ${doc.kind} has no validator here`);
      assert.doesNotThrow(() => new Model(doc as never).validate(), `${file}: ${doc.kind} ${doc.metadata?.name}`);
    }
  });

  it('the validator does reject a broken manifest (so the test above can fail)', () => {
    const { doc } = all.find((m) => m.doc.kind === 'Deployment')!;
    const broken = structuredClone(doc);
    broken.spec.replicas = 'one';
    delete broken.spec.template.spec.containers[0].name;
    assert.throws(() => new Deployment(broken as never).validate(), /replicas must be integer[\s\S]*name|name[\s\S]*replicas/);
  });

  it('the enclave pod takes /dev/nitro_enclaves from the device plugin and hugepages, and is not privileged', () => {
    const { doc } = all.find((m) => m.doc.kind === 'Deployment')!;
    const pod = doc.spec.template.spec;
    for (const c of pod.containers) {
      assert.equal(c.resources.limits['aws.ec2.nitro/nitro_enclaves'], '1');
      assert.equal(c.resources.requests['aws.ec2.nitro/nitro_enclaves'], '1');
      const huge = Object.keys(c.resources.limits).filter((k) => k.startsWith('hugepages-'));
      assert.ok(huge.length === 1, 'one hugepage size');
      assert.equal(c.resources.requests[huge[0]!], c.resources.limits[huge[0]!], 'hugepages requested = limited');
      assert.notEqual(c.securityContext?.privileged, true);
      const mounted = c.volumeMounts.map((m: { name: string }) => m.name);
      const hugeVolume = pod.volumes.find((v: any) => v.emptyDir?.medium === 'HugePages');
      assert.ok(hugeVolume && mounted.includes(hugeVolume.name), 'a HugePages emptyDir is mounted');
      const ports = c.ports.map((p: { name: string }) => p.name);
      for (const probe of [c.readinessProbe, c.livenessProbe])
        assert.ok(ports.includes(probe.httpGet.port), `probe port ${probe.httpGet.port} is declared`);
    }
    assert.ok(pod.nodeSelector['aws-nitro-enclaves-k8s-dp'] === 'enabled');
  });

  it('no pod in the manifests is privileged', () => {
    for (const { file, doc } of all) {
      for (const c of doc.spec?.template?.spec?.containers ?? [])
        assert.notEqual(c.securityContext?.privileged, true, `${file}: ${c.name}`);
    }
  });
});

describe('configs/systemd/enclaver-proxy.service', () => {
  const unit = fs.readFileSync(path.join(ROOT, 'configs/systemd/enclaver-proxy.service'), 'utf8');
  const keys = new Map<string, string>();
  for (const line of unit.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (m) keys.set(m[1]!, m[2]!);
  }

  it('runs the outer as the enclave supervisor after the allocator, stops it with SIGTERM, restarts on failure', () => {
    assert.match(keys.get('ExecStart') ?? '', /^\/usr\/bin\/enclaver-proxy run /);
    assert.match(keys.get('Requires') ?? '', /nitro-enclaves-allocator\.service/);
    assert.match(keys.get('After') ?? '', /nitro-enclaves-allocator\.service/);
    assert.equal(keys.get('KillSignal'), 'SIGTERM');
    assert.equal(keys.get('Restart'), 'on-failure');
    assert.equal(keys.get('Group'), 'ne');
  });
});
