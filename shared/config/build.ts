/**
 * The `build:` section of a role inner config: how `enclaver-proxy build --config proxy.yaml`
 * packages this inner side into an enclave image. It carries what an Enclaver manifest carries
 * for a build (app image, release image name, signing, defaults); the inner config embedded in the
 * image is the same file's inner side (everything but `build:`), so the config a developer runs
 * with `role: inner` is the one that gets measured. The outer side that runs in the release image
 * is a separate role outer config (`outer_config`), because it runs on another machine.
 *
 * Running the proxy ignores this section (a notice says so); only the builder reads it.
 */
import path from 'node:path';
import { file, integer, object, oneOfValues, optional, refine, required, string, type FillContext, type Static } from './spec.js';

/** skopeo's transports whose reference is a local path (resolved against the config's directory). */
const PATH_TRANSPORTS = ['oci', 'oci-archive', 'docker-archive'];

/** A path transport's reference made absolute against the config's directory; others as written. */
function resolveImage(text: string, configDir: string): string {
  const colon = text.indexOf(':');
  const transport = colon > 0 ? text.slice(0, colon) : '';
  if (!PATH_TRANSPORTS.includes(transport)) return text;
  const rest = text.slice(colon + 1);
  return path.isAbsolute(rest) || rest === '' ? text : `${transport}:${path.resolve(configDir, rest)}`;
}

const imageText = required(
  string({
    minLength: 1,
    description:
      'The app image, named the way skopeo names images: oci:DIR[:REF], oci-archive:FILE[:REF], docker-archive:FILE, ' +
      "docker://HOST/REPO:TAG, or a bare reference (a registry). Paths are relative to the config file's directory.",
  }),
);
const imageSpec = {
  ...refine(imageText, (text, _p, ctx) => resolveImage(text, ctx.configDir)),
  fill: (raw: unknown, ctx: FillContext) => (typeof raw === 'string' ? resolveImage(raw, ctx.configDir) : raw),
};

export const buildSpec = optional(
  object(
    'Role inner only: how `enclaver-proxy build --config FILE` packages this inner side (the rest of this file, measured into ' +
      'PCR2) with the app image into an enclave image (EIF) and a release image. Running the proxy ignores it.',
    {
      image: imageSpec,
      target: required(
        string({
          minLength: 1,
          description:
            'Name and tag of the release image (REPO:TAG or HOST/REPO:TAG): the tag names it in the output layout, and ' +
            '`build --push` pushes it there.',
        }),
      ),
      name: string({ minLength: 1, description: "Informational name in the EIF's metadata (default: the target's repository name)." }),
      outerConfig: file(
        'The outer side (a role outer config) that runs in the release image, launching the enclave from ' +
          '/enclave/application.eif. Needed for the release image; without it, build with --no-release.',
      ),
      arch: oneOfValues(['x86_64', 'aarch64'], { default: 'x86_64', description: 'The enclave architecture (--arch overrides it).' }),
      signature: optional(
        object('Sign the EIF (its certificate is measured into PCR8).', {
          certificate: required(file('The signing certificate (PEM, ECDSA P-384).')),
          key: required(file('Its private key (PEM).')),
        }),
      ),
      defaults: object("Written into the EIF's header (nitro-cli's defaults), and the release image's launch settings.", {
        cpuCount: integer({
          minimum: 1,
          description: "vCPUs; the release image uses it unless the outer config's enclave.cpu_count is set.",
        }),
        memoryMib: integer({
          minimum: 64,
          description: "Memory in MiB; the release image uses it unless the outer config's enclave.memory_mib is set.",
        }),
      }),
    },
  ),
);

export type BuildConfig = NonNullable<Static<typeof buildSpec>>;
