/** `direct`: the client talks to the servers with nothing in between (the ceiling). */
import type { PathDefinition } from './types.js';

export const directPath: PathDefinition = {
  name: 'direct',
  unavailable: () => null,
  async start(targets) {
    return {
      name: 'direct',
      echoPort: targets.echoPort,
      bulkPort: targets.bulkPort,
      proxyPids: () => [],
      proxyCpuSeconds: () => 0,
      stop: async () => {},
    };
  },
};
