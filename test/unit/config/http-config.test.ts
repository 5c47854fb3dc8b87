/** Config of the `http` listener kind and of `tls.certificate: attested`: what is read, and what is refused with which message. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { InnerConfig } from '../../../shared/config/types.js';
import { configProblems, listenerOf, loadText } from '../../helpers/config.js';

const CLUSTERS = 'clusters: [{ name: web, endpoints: ["tcp://127.0.0.1:8080"] }, { name: api, endpoints: ["unix:///run/api.sock"] }]\n';

describe('config: http listeners and attested TLS', () => {
  it('reads routes with their clusters resolved, the defaults, and an attested certificate', () => {
    const c = loadText(`role: inner
${CLUSTERS}listeners:
  - name: web
    address: vsock://any:8443
    proxy_protocol: v2
    tls: { certificate: attested, names: [api.example.com, 10.0.0.1] }
    http:
      routes: [{ name: v1, hosts: ["*.example.com"], paths: ["/v1/**"], cluster: api }]
      default_cluster: web
`) as InnerConfig;
    const l = listenerOf(c, 'http');
    assert.deepEqual(l.tls, { source: 'attested', names: ['api.example.com', '10.0.0.1'], embedAttestation: false });
    assert.equal(l.http.routes[0]!.cluster.name, 'api');
    assert.deepEqual(l.http.routes[0]!.paths, ['/v1/**']);
    assert.equal(l.http.defaultCluster?.name, 'web');
    assert.deepEqual(
      [l.http.maxHeaderBytes, l.http.maxHeaders, l.http.headTimeoutMs, l.http.keepAliveTimeoutMs, l.http.http2],
      [16384, 100, 10_000, 5000, false],
    );
    assert.equal(l.expectProxyProtocol, true);
  });

  it('reads embed_attestation on an attested certificate', () => {
    const c = loadText(
      `role: inner\n${CLUSTERS}listeners: [{ name: w, address: "vsock://any:8443", tls: { certificate: attested, names: [a], embed_attestation: true }, http: { default_cluster: web } }]\n`,
    ) as InnerConfig;
    assert.deepEqual(listenerOf(c, 'http').tls, { source: 'attested', names: ['a'], embedAttestation: true });
  });

  it('keeps certificate files for http listeners as for TCP ones', () => {
    const c = loadText(
      `role: inner\n${CLUSTERS}listeners: [{ name: w, address: "vsock://any:8443", tls: { certificate: site.crt, private_key: site.key }, http: { default_cluster: web } }]\n`,
      {},
      '/etc/proxy.yaml',
    ) as InnerConfig;
    assert.deepEqual(listenerOf(c, 'http').tls, { source: 'files', certificate: '/etc/site.crt', privateKey: { file: '/etc/site.key' } });
  });

  it('refuses what cannot work, each at its path', () => {
    const refused = (listener: string, role = 'inner') => configProblems(`role: ${role}\n${CLUSTERS}listeners: [${listener}]\n`).join('\n');
    assert.match(
      refused('{ name: w, address: "vsock://any:1", http: { default_cluster: nope } }'),
      /listeners\[0\]\.http\.default_cluster: unknown cluster "nope"/,
    );
    assert.match(
      refused('{ name: w, address: "vsock://any:1", http: { routes: [{ name: r, cluster: gone }] } }'),
      /listeners\[0\]\.http\.routes\[0\]\.cluster: unknown cluster "gone"/,
    );
    assert.match(refused('{ name: w, address: "vsock://any:1", http: {} }'), /needs `routes` or a `default_cluster`/);
    assert.match(refused('{ name: w, address: "vsock://any:1", http: { routes: [{ name: default, cluster: web }] } }'), /built-in route/);
    assert.match(
      refused('{ name: w, address: "tcp://127.0.0.1:1", http: { default_cluster: web } }', 'outer'),
      /only the inner side has them/,
    );
    assert.match(
      refused('{ name: w, address: "vsock://any:1", cluster: web, tls: { certificate: attested, names: [a] } }'),
      /needs an `http` listener/,
    );
    assert.match(
      refused('{ name: w, address: "vsock://any:1", http: { default_cluster: web }, tls: { certificate: attested } }'),
      /tls\.names: an attested certificate needs `names`/,
    );
    assert.match(
      refused(
        '{ name: w, address: "vsock://any:1", http: { default_cluster: web }, tls: { certificate: attested, names: [a], private_key: k.pem } }',
      ),
      /tls\.private_key: .*generated inside the enclave/,
    );
    assert.match(
      refused('{ name: w, address: "vsock://any:1", http: { default_cluster: web }, tls: { certificate: c.pem } }'),
      /needs `private_key`/,
    );
    assert.match(
      refused(
        '{ name: w, address: "vsock://any:1", http: { default_cluster: web }, tls: { certificate: c.pem, private_key: k.pem, embed_attestation: true } }',
      ),
      /tls\.embed_attestation: `embed_attestation` is for `certificate: attested`/,
    );
  });
});
