// `openssl verify` wrapper: returns the verdict and output instead of throwing.
import { spawnSync } from 'node:child_process';
import { requireTool } from './peers.ts';

export interface OpensslVerifyOptions {
  /** PEM file of trusted roots (-CAfile). */
  trusted: string;
  /** PEM file of untrusted intermediates (-untrusted). */
  untrusted?: string;
  /** -purpose sslclient | sslserver | any ... */
  purpose?: string;
  /** -partial_chain: accept a chain ending at a trusted non-self-signed cert. */
  partialChain?: boolean;
  /** -x509_strict (default true). */
  strict?: boolean;
  /** -attime (unix seconds). */
  atTime?: number;
}

export interface OpensslResult {
  ok: boolean;
  output: string;
}

export function opensslVerify(leafPem: string, o: OpensslVerifyOptions): OpensslResult {
  const openssl = requireTool('openssl');
  const args = ['verify', '-CAfile', o.trusted];
  if (o.untrusted !== undefined) args.push('-untrusted', o.untrusted);
  if (o.purpose !== undefined) args.push('-purpose', o.purpose);
  if (o.partialChain === true) args.push('-partial_chain');
  if (o.strict !== false) args.push('-x509_strict');
  if (o.atTime !== undefined) args.push('-attime', String(o.atTime));
  args.push(leafPem);
  const r = spawnSync(openssl, args, { encoding: 'utf8' });
  if (r.error !== undefined) throw r.error;
  const output = `${r.stdout}${r.stderr}`.trim();
  // openssl verify exits 0 and prints "<file>: OK" only when every cert in the file verified.
  return { ok: r.status === 0 && /: OK$/m.test(output), output };
}

/** Runs `openssl <args>` and returns stdout (throws on non-zero exit). */
export function openssl(args: string[], input?: string): string {
  const bin = requireTool('openssl');
  const r = spawnSync(bin, args, { encoding: 'utf8', input });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}
