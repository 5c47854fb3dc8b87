/**
 * A terminating listener's TLS identity, as both termination paths use it: the JS path hands
 * Node's SecureContext to each TLSSocket; the native fast path builds its own OpenSSL context on
 * the pump threads from the same PEM text, so contexts are made here, with the PEM remembered
 * beside them (a SecureContext does not give its key back).
 *
 * The PEM is kept only as long as its context is referenced (a WeakMap); it is never logged.
 */
import tls from 'node:tls';

/** The PEM a context was made from: the certificate (leaf first, then its chain) and the key. */
export interface PemIdentity {
  certificate: string | Buffer;
  key: string | Buffer;
}

/**
 * The TLS identity of a terminating listener; awaited per connection (it may still be loading).
 * `onChange`, when present, tells of a new identity (an attested certificate re-issued): the
 * next call returns it, for new handshakes only.
 */
export type TlsContextSource = (() => Promise<tls.SecureContext>) & { onChange?: (listener: () => void) => void };

const pemOf = new WeakMap<tls.SecureContext, PemIdentity>();

/** A server context (TLS 1.2 at least, as every terminating listener) whose PEM the fast path can read. */
export function pemSecureContext(identity: PemIdentity): tls.SecureContext {
  const context = tls.createSecureContext({ cert: identity.certificate, key: identity.key, minVersion: 'TLSv1.2' });
  pemOf.set(context, identity);
  return context;
}

/** The PEM of a context made by pemSecureContext; undefined for any other context. */
export function pemIdentityOf(context: tls.SecureContext): PemIdentity | undefined {
  return pemOf.get(context);
}

/**
 * Node's default ciphers, split as Node splits them for OpenSSL: TLS 1.3 suites (TLS_*) apart
 * from the TLS 1.2 cipher list, so the native context offers what the JS path offers.
 */
export function nodeDefaultCiphers(): { cipherList: string; cipherSuites: string } {
  const all = tls.DEFAULT_CIPHERS.split(':');
  return {
    cipherSuites: all.filter((c) => c.startsWith('TLS_')).join(':'),
    cipherList: all.filter((c) => !c.startsWith('TLS_')).join(':'),
  };
}
