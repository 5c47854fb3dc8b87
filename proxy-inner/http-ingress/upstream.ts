/**
 * The app side of an HTTP listener: one undici Pool per cluster, kept-alive connections opened
 * through the project's own transports (`connectCluster`: tcp, unix, vsock, endpoints tried in
 * order) so an HTTP cluster reaches exactly what a TCP cluster would.
 *
 * Upgrades do not go through the pool: an upgraded connection leaves HTTP for good, so it gets a
 * connection of its own (`connectFresh`) that is handed to the pump afterwards.
 */
import type net from 'node:net';
import { Pool } from 'undici';
import { connectCluster } from '../../shared/cluster/connect.js';
import type { ClusterConfig } from '../../shared/config/types.js';

/** Connections kept per cluster; a request beyond that waits for a free one (undici queues it). */
const DEFAULT_CONNECTIONS_PER_CLUSTER = 256;

export interface UpstreamOptions {
  /** Idle kept-alive app connections are closed after this long (undici keepAliveTimeout). */
  keepAliveTimeoutMs: number;
  connectionsPerCluster?: number;
}

export class Upstreams {
  private readonly pools = new Map<string, Pool>();

  constructor(
    private readonly clusters: Map<string, ClusterConfig>,
    private readonly opts: UpstreamOptions,
  ) {}

  pool(clusterName: string): Pool {
    let pool = this.pools.get(clusterName);
    if (pool) return pool;
    const cluster = this.cluster(clusterName);
    pool = new Pool(`http://${encodeURIComponent(cluster.name)}.cluster.invalid`, {
      connections: this.opts.connectionsPerCluster ?? DEFAULT_CONNECTIONS_PER_CLUSTER,
      keepAliveTimeout: this.opts.keepAliveTimeoutMs,
      // Streaming bodies and long polls are governed by the listener's idle timeout, not undici's defaults.
      headersTimeout: 0,
      bodyTimeout: 0,
      connect: (_options, callback) => {
        connectCluster(cluster).then(
          ({ socket }) => callback(null, socket),
          (err: Error) => callback(err, null),
        );
      },
    });
    this.pools.set(clusterName, pool);
    return pool;
  }

  /** A connection of its own (for an Upgrade), not pooled. */
  connectFresh(clusterName: string, signal: AbortSignal): Promise<{ socket: net.Socket; endpoint: string }> {
    return connectCluster(this.cluster(clusterName), signal);
  }

  private cluster(name: string): ClusterConfig {
    const cluster = this.clusters.get(name);
    if (!cluster) throw new Error(`HTTP route names unknown cluster ${name}`);
    return cluster;
  }

  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map((p) => p.destroy()));
  }
}
