/**
 * The vocabulary of the audit syslog sink, shared by the config (which validates it) and the
 * outer (which speaks it): RFC 5424 facilities and the transport to the server.
 */

/** RFC 5424 facility codes by name (the ones an operator would pick for audit). */
export const SYSLOG_FACILITIES = {
  auth: 4,
  authpriv: 10,
  local0: 16,
  local1: 17,
  local2: 18,
  local3: 19,
  local4: 20,
  local5: 21,
  local6: 22,
  local7: 23,
} as const;
export type SyslogFacility = keyof typeof SYSLOG_FACILITIES;

export type SyslogTransport =
  | { kind: 'tcp' }
  /** RFC 5425; `ca` is PEM text (system CAs when absent), `serverName` defaults to the host. */
  | { kind: 'tls'; ca: string | undefined; serverName: string | undefined };
