/**
 * TEST-ONLY: the role credentials the IMDS emulator hands out and the KMS emulator accepts, so
 * that the two emulators agree on which keys are valid and until when.
 */
import crypto from 'node:crypto';

export interface IssuedCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  expiration: Date;
}

export class CredentialStore {
  private readonly byKeyId = new Map<string, IssuedCredentials>();
  issuedCount = 0;

  constructor(private readonly now: () => number = Date.now) {}

  issue(lifetimeMs: number): IssuedCredentials {
    const creds: IssuedCredentials = {
      accessKeyId: `ASIA${crypto.randomBytes(8).toString('hex').toUpperCase()}`,
      secretAccessKey: crypto.randomBytes(30).toString('base64'),
      sessionToken: crypto.randomBytes(48).toString('base64'),
      // IMDS states Expiration to the second.
      expiration: new Date(Math.floor((this.now() + lifetimeMs) / 1000) * 1000),
    };
    this.byKeyId.set(creds.accessKeyId, creds);
    this.issuedCount++;
    return creds;
  }

  lookup(accessKeyId: string): IssuedCredentials | undefined {
    return this.byKeyId.get(accessKeyId);
  }

  isExpired(creds: IssuedCredentials): boolean {
    return creds.expiration.getTime() <= this.now();
  }
}
