/**
 * Nitro PCR arithmetic: a PCR starts as 48 zero bytes and is extended once with the SHA-384 of
 * the measured bytes, so PCR = SHA-384(0⁴⁸ ‖ SHA-384(data)). What each PCR measures:
 *   PCR0 kernel ‖ cmdline ‖ every ramdisk    PCR1 kernel ‖ cmdline ‖ ramdisk 0 (bootstrap)
 *   PCR2 ramdisks 1…n (the app)              PCR8 the signing certificate (DER)
 * The metadata and signature sections are not measured.
 */
import crypto from 'node:crypto';

export const PCR_BYTES = 48;

export interface Pcrs {
  PCR0: string;
  PCR1: string;
  PCR2: string;
  /** Only for signed images. */
  PCR8?: string;
}

export function extendFromZero(digest: Buffer): string {
  return crypto.createHash('sha384').update(Buffer.alloc(PCR_BYTES)).update(digest).digest('hex');
}

export function pcrOfBytes(data: Uint8Array): string {
  return extendFromZero(crypto.createHash('sha384').update(data).digest());
}

/**
 * Feeds each section's bytes, in file order, to the hashes it belongs to. Ramdisk 0 is the
 * bootstrap; later ramdisks are the app's.
 */
export class PcrMeasurer {
  private readonly image = crypto.createHash('sha384');
  private readonly bootstrap = crypto.createHash('sha384');
  private readonly app = crypto.createHash('sha384');
  private ramdisksSeen = 0;
  private current: 'boot' | 'ramdisk0' | 'app' | 'none' = 'none';

  /** Call before feeding a section's payload. */
  beginSection(kind: 'kernel' | 'cmdline' | 'ramdisk' | 'other'): void {
    if (kind === 'kernel' || kind === 'cmdline') this.current = 'boot';
    else if (kind === 'ramdisk') this.current = this.ramdisksSeen++ === 0 ? 'ramdisk0' : 'app';
    else this.current = 'none';
  }

  update(chunk: Uint8Array): void {
    switch (this.current) {
      case 'boot':
      case 'ramdisk0':
        this.image.update(chunk);
        this.bootstrap.update(chunk);
        return;
      case 'app':
        this.image.update(chunk);
        this.app.update(chunk);
        return;
      case 'none':
        return;
    }
  }

  finish(signingCertificateDer?: Buffer): Pcrs {
    const pcrs: Pcrs = {
      PCR0: extendFromZero(this.image.digest()),
      PCR1: extendFromZero(this.bootstrap.digest()),
      PCR2: extendFromZero(this.app.digest()),
    };
    if (signingCertificateDer) pcrs.PCR8 = pcrOfBytes(signingCertificateDer);
    return pcrs;
  }
}

/** The JSON written next to an EIF: nitro-cli's `Measurements` shape, so existing tooling reads it. */
export function pcrsJson(pcrs: Pcrs): string {
  return `${JSON.stringify({ Measurements: { HashAlgorithm: 'Sha384 { ... }', ...pcrs } }, null, 2)}\n`;
}
