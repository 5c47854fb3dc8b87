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
import {
  custom,
  file,
  fillFields,
  integer,
  object,
  objectSchema,
  oneOfValues,
  optional,
  readFieldsPartial,
  refine,
  required,
  string,
  Unreadable,
  type FillContext,
  type Static,
} from './spec.js';

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

/**
 * A KMS key ARN as nitro-cli recognises one (aws-nitro-enclaves-image-format, eif_signer.rs): any
 * `aws…` partition, the region (captured: the KMS client is made for it), a 12-digit account, and
 * `key/ID` or `key:ID`. Aliases are not accepted, as in nitro-cli.
 */
export const KMS_KEY_ARN_PATTERN = '^arn:aws[-a-z]*:kms:([a-z0-9-]+):[0-9]{12}:key[:/][a-zA-Z0-9-]+$';

/** The EIF signing key: a PEM file on the build host, or an asymmetric KMS key that signs remotely. */
export type SigningKey = { kind: 'file'; file: string } | { kind: 'kms'; arn: string };

export interface SignatureConfig {
  certificate: string;
  key: SigningKey;
}

const signatureFields = {
  certificate: required(file('The signing certificate (PEM): an ECDSA P-256, P-384 or P-521 public key. PCR8 measures it (its DER form).')),
  key: file('Its private key (PEM file, same curve). Give this or `kms_key_arn`.'),
  kmsKeyArn: string({
    pattern: KMS_KEY_ARN_PATTERN,
    description:
      'Sign with this asymmetric KMS key instead of a key file (ARN arn:aws:kms:REGION:ACCOUNT:key/ID; KeyUsage SIGN_VERIFY, ' +
      "KeySpec ECC_NIST_P256/P384/P521, public key = the certificate's). The KMS region is the ARN's; credentials and " +
      'endpoint come from the standard AWS settings (environment, profile, instance role; AWS_ENDPOINT_URL_KMS).',
  }),
};

/**
 * Two keys, not one string sniffed for `arn:`: the schema can then check the ARN's form (reported
 * at file:line:col), `--check` looks for the key file only when there is one, and a relative path
 * that happens to start with `arn:` cannot be taken for a key in KMS.
 */
const signatureSpec = optional(
  custom<SignatureConfig>(
    objectSchema(
      "Sign the EIF, like nitro-cli's --signing-certificate/--private-key: the certificate and either `key` (a PEM file) " +
        'or `kms_key_arn` (a KMS key). The certificate is measured into PCR8.',
      signatureFields,
    ),
    (raw, p, ctx) => {
      const { value, complete } = readFieldsPartial(signatureFields, raw, p, ctx);
      const { certificate, key, kmsKeyArn } = value;
      const keys: SigningKey[] = [
        ...(key !== undefined ? [{ kind: 'file' as const, file: key }] : []),
        ...(kmsKeyArn !== undefined ? [{ kind: 'kms' as const, arn: kmsKeyArn }] : []),
      ];
      if (keys.length !== 1)
        ctx.problem(
          p,
          keys.length
            ? 'give the signing key once: `key` (a PEM file) or `kms_key_arn` (a KMS key), not both'
            : 'the signing key is missing: add `key` (a PEM file) or `kms_key_arn` (a KMS key ARN)',
        );
      const [only] = keys;
      if (!complete || certificate === undefined || only === undefined || keys.length > 1) throw new Unreadable();
      return { certificate, key: only };
    },
    (raw, ctx) => fillFields(signatureFields, raw, ctx),
  ),
);

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
      signature: signatureSpec,
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
