/** AWS credentials as the proxy holds them: what IMDS hands out for the instance role. */
export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  expiration?: Date;
}

/** The JSON IMDS serves at /latest/meta-data/iam/security-credentials/<role>. */
export interface ImdsCredentialsDocument {
  Code: string;
  LastUpdated?: string;
  Type?: string;
  AccessKeyId: string;
  SecretAccessKey: string;
  Token: string;
  Expiration: string;
}

export function isImdsCredentialsDocument(v: unknown): v is ImdsCredentialsDocument {
  if (!v || typeof v !== 'object') return false;
  const d = v as Record<string, unknown>;
  return (
    ['AccessKeyId', 'SecretAccessKey', 'Token', 'Expiration'].every((k) => typeof d[k] === 'string' && d[k] !== '') &&
    !Number.isNaN(Date.parse(d.Expiration as string))
  );
}

export function credentialsFromImds(doc: ImdsCredentialsDocument): AwsCredentials {
  return {
    accessKeyId: doc.AccessKeyId,
    secretAccessKey: doc.SecretAccessKey,
    sessionToken: doc.Token,
    expiration: new Date(doc.Expiration),
  };
}
