/**
 * The route table of an HTTP listener: host and path globs (minimatch) to a cluster, first match
 * wins, then the default route. Globs are compiled once at startup; a request costs one
 * `Minimatch.match` per pattern tried.
 *
 * Hosts match case-insensitively without the port (`*.example.com`); paths match the path
 * without the query, with `**` crossing slashes (`/api/**`; note it needs at least one segment
 * after `/api/`, so `/api{,/**}` takes `/api` too). A leading dot is an ordinary character.
 */
import { Minimatch } from 'minimatch';

export interface HttpRoute {
  /** Label for metrics and the access log. */
  name: string;
  /** Host globs; empty = any host. */
  hosts: readonly string[];
  /** Path globs; empty = any path. */
  paths: readonly string[];
  cluster: string;
}

/** The route a request took: a configured one, the default, or none (answered 404). */
export type RouteMatch = { route: string; cluster: string } | null;

export const DEFAULT_ROUTE = 'default';

interface CompiledRoute {
  /** The answer when this route matches, built once (a request allocates nothing to be routed). */
  match: { route: string; cluster: string };
  hosts: Minimatch[];
  paths: Minimatch[];
}

export type RouteTable = (host: string, path: string) => RouteMatch;

/** `Host: Example.COM:8443` → `example.com`; `[::1]:80` → `[::1]`. */
export function hostWithoutPort(host: string): string {
  const h = host.toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    return end < 0 ? h : h.slice(0, end + 1);
  }
  const colon = h.indexOf(':');
  return colon < 0 ? h : h.slice(0, colon);
}

export function compileRoutes(routes: HttpRoute[], defaultCluster: string | undefined): RouteTable {
  const compiled: CompiledRoute[] = routes.map((r) => ({
    match: { route: r.name, cluster: r.cluster },
    hosts: r.hosts.map((g) => new Minimatch(g.toLowerCase(), { nocase: true, dot: true, noglobstar: true })),
    paths: r.paths.map((g) => new Minimatch(g, { dot: true })),
  }));
  const fallback: RouteMatch = defaultCluster === undefined ? null : { route: DEFAULT_ROUTE, cluster: defaultCluster };
  return (host, path) => {
    const bareHost = hostWithoutPort(host);
    for (const r of compiled) {
      if (r.hosts.length > 0 && !r.hosts.some((m) => m.match(bareHost))) continue;
      if (r.paths.length > 0 && !r.paths.some((m) => m.match(path))) continue;
      return r.match;
    }
    return fallback;
  };
}
