/**
 * The EIF metadata section: nitro-cli's JSON shape (ImageName, ImageVersion, BuildMetadata,
 * DockerInfo, CustomMetadata) so `nitro-cli describe-eif` reads ours. It is not measured, but
 * it is in the file's bytes and CRC, so every value here is a function of the inputs: BuildTime
 * is SOURCE_DATE_EPOCH (or the epoch when unset), never the clock; DockerInfo is the image's
 * config, not a daemon's inspect output.
 */
export interface MetadataInputs {
  imageName: string;
  imageVersion: string;
  toolVersion: string;
  kernelInfo: { os: string; version: string } | undefined;
  dockerInfo: unknown;
  customMetadata?: unknown;
  /** Seconds since the epoch. */
  sourceDateEpoch: number;
}

export const BUILD_TOOL = 'enclaver-proxy';

/** SOURCE_DATE_EPOCH (reproducible-builds.org) or 0; anything else is an error, never ignored. */
export function sourceDateEpoch(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.SOURCE_DATE_EPOCH;
  if (raw === undefined || raw === '') return 0;
  if (!/^[0-9]+$/.test(raw)) throw new Error(`SOURCE_DATE_EPOCH must be a whole number of seconds, not "${raw}"`);
  return Number(raw);
}

/** nitro-cli's format: RFC 3339 with microseconds and an explicit +00:00. */
export function buildTime(epochSeconds: number): string {
  return new Date(epochSeconds * 1000).toISOString().replace(/\.(\d{3})Z$/, '.$1000+00:00');
}

export function encodeMetadata(m: MetadataInputs): Buffer {
  return Buffer.from(
    JSON.stringify({
      ImageName: m.imageName,
      ImageVersion: m.imageVersion,
      BuildMetadata: {
        BuildTime: buildTime(m.sourceDateEpoch),
        BuildTool: BUILD_TOOL,
        BuildToolVersion: m.toolVersion,
        OperatingSystem: m.kernelInfo?.os ?? 'Linux',
        KernelVersion: m.kernelInfo?.version ?? 'unknown',
      },
      DockerInfo: m.dockerInfo,
      CustomMetadata: m.customMetadata ?? null,
    }),
    'utf8',
  );
}
