/** The `clusters` section: named groups of upstream endpoints that TCP proxy listeners forward to. */
import { isReservedPort, RESERVED_PORT_MAX, RESERVED_PORT_MIN } from '../wire/ports.js';
import type { Address } from '../transport/address.js';
import type { PathSegment } from './source.js';
import { address, at, duration, list, object, oneOfValues, refine, required, string, type ReadContext, type Static } from './spec.js';

export const NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$';

/** The pair's own vsock ports may not be used by a listener or cluster (they would shadow its channels). */
export function notReserved(what: string) {
  return (a: Address, p: readonly PathSegment[], ctx: ReadContext): Address => {
    if (a.kind === 'vsock' && isReservedPort(a.port)) {
      ctx.problem(
        p,
        `vsock port ${a.port} is reserved for the pair's own channels (${RESERVED_PORT_MIN}-${RESERVED_PORT_MAX}); choose another port for this ${what}`,
      );
    }
    return a;
  };
}

/** `proxy_protocol: v2` as a flag. */
export function proxyProtocolFlag(description: string) {
  return at(
    'proxy_protocol',
    refine(oneOfValues(['v2'], { description }), (v) => v === 'v2'),
  );
}

export const clusterSpec = refine(
  object('A named group of upstream endpoints that listeners forward to.', {
    name: required(string({ pattern: NAME_PATTERN, description: 'Unique name referenced by listeners.' })),
    endpoints: required(
      list(refine(required(address('Upstream address.')), notReserved('cluster endpoint')), {
        minItems: 1,
        description: 'Upstream addresses, tried in order until one accepts.',
      }),
    ),
    connectTimeoutMs: at('connect_timeout', duration('Give up on an endpoint that has not accepted within this time.', '5s')),
    sendProxyProtocol: proxyProtocolFlag('Send a PROXY protocol v2 header carrying the client address before the first byte.'),
  }),
  (cluster, p, ctx) => {
    if (ctx.claim('cluster name', cluster.name, cluster.name)) ctx.problem([...p, 'name'], `duplicate cluster name "${cluster.name}"`);
    return cluster;
  },
);

export type ClusterConfig = Static<typeof clusterSpec>;

export const clustersSpec = list(clusterSpec, { default: [], description: 'Clusters of this side.' });
