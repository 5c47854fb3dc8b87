export const HELP = `enclaver-proxy — sidecar proxy pair for AWS Nitro Enclaves

Usage:
  enclaver-proxy --config FILE [options] [-- APP [ARGS…]]
  enclaver-proxy --config FILE --check          validate and print the normalized config
  enclaver-proxy schema [--write]               print the config JSON Schema (--write: also
                                                regenerate schema/ and docs/config.md)
  enclaver-proxy attestation verify FILE [--root PEM] [--at document|now|ISO]
                 [--pcr N=HEX …] [--nonce HEX]
                                                verify a Nitro attestation document
  enclaver-proxy audit verify FILE… [--pcr N=HEX …] [--root PEM] [--running] [--json]
                                                prove an egress audit log (docs/audit.md)
  enclaver-proxy build -f enclaver.yaml | --config proxy.yaml [--out DIR] [--blobs DIR] …
                                                app image → EIF + PCRs + release image (no daemon)
  enclaver-proxy describe-eif FILE [--json]     an EIF's header, sections, CRC, PCRs, signature
  enclaver-proxy measure EIF|IMAGE [-f enclaver.yaml] [--json|--kms-policy]
                                                PCRs (recomputed, or of IMAGE's build), or a KMS
                                                policy condition
  enclaver-proxy doctor [--json]                addon, pump, splice, pipe limits, vsock and CID
  enclaver-proxy run [RELEASE_DIR|EIF] [-p HOST:ENCLAVE …] [--debug] [--verify-before-run PCRS.json]
                                                launch the enclave with nitro-cli and run its outer
                                                proxy (Enclaver's \`enclaver run\`; see run --help)
  enclaver-proxy --version [--verbose]
  enclaver-proxy --help

Runs whatever the config declares: role inner (in the enclave), outer (on the parent
instance) or local (both on this machine over emulated vsock, for development).

Options:
  -c, --config FILE       proxy.yaml, or an Enclaver manifest (enclaver.yaml)
      --role ROLE         inner | outer | local; required for Enclaver manifests
  -p, --publish [IP:]HOST_PORT:ENCLAVE_PORT
                          manifest ingress: where the outer listens for an enclave port
                          (repeatable; the docker convention)
      --enclave-cid CID   manifest: the enclave's CID (default 16)
      --audit-log FILE    outer: append egress audit records to FILE (rotated by size)
      --hosts FILE        outer: names the egress relay resolves from FILE (/etc/hosts
                          format) before DNS; their addresses pass the private-address guard
      --admin ADDR        admin endpoint of this side (the outer's under role local);
                          'none' disables it (default tcp://127.0.0.1:9901 inner, :9902 outer)
      --inner-admin ADDR  role local: the inner's admin endpoint
      --check             validate the config, print it normalized, exit
      --log-level LEVEL   fatal|error|warn|info|debug|trace|silent (or ENCLAVER_LOG_LEVEL)
  -h, --help              show this help
  -V, --version           show the version

  -- APP [ARGS…]          the app the inner proxy starts and supervises (roles inner, local)

Environment:
  ENCLAVER_LOG_FORMAT=json|pretty   log format (default: pretty on a terminal, else JSON lines)
  ENCLAVER_VSOCK_EMULATION_DIR=DIR  emulate vsock with Unix sockets in DIR
  ENCLAVER_NATIVE=0                 run without the native addon (JS pump, no real vsock)
  ENCLAVER_PUMP_PIPE_SIZE=BYTES     native pump pipe size (default 256 KiB)
  ENCLAVER_PUMP_THREADS=N           native pump threads (default: half the cores, 1–4)

Exit status: the app's exit code when the pair supervises one; 2 for usage or config errors.
`;
