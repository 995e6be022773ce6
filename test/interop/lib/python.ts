// Runs the Python helpers in test/interop/lib with a python that has py-spiffe and PyJWT.
import { spawnSync } from 'node:child_process';
import { libFile, python } from './peers.ts';

/** Runs `python3 test/interop/lib/<script>` with JSON on stdin and parses its JSON stdout. */
export function runPythonJson<T>(script: string, input: unknown): T {
  const py = python();
  const r = spawnSync(py, [libFile(script)], { input: JSON.stringify(input), encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`${script} exited ${r.status}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

export interface PyVerdict {
  ok: boolean;
  error?: string;
  sub?: string;
}

export interface JwtCheckCase {
  token: string;
  jwks: string;
  trustDomain: string;
  audience: string[];
}

/** PyJWT and py-spiffe verdicts for each case (see jwt_check.py). */
export function pyJwtCheck(cases: JwtCheckCase[]): { pyjwt: PyVerdict; pyspiffe: PyVerdict }[] {
  return runPythonJson('jwt_check.py', cases);
}

export interface BundleCheckCase {
  kind: 'jwtbundle' | 'x509bundle' | 'x509bundle-raw' | 'x509svid' | 'spiffeid';
  trustDomain?: string;
  data: string;
  key?: string;
}

export interface PyBundleVerdict extends PyVerdict {
  kids?: string[];
  sha256?: string[];
  id?: string;
  chainLength?: number;
}

/** py-spiffe offline parsers (see bundle_check.py). */
export function pyBundleCheck(cases: BundleCheckCase[]): PyBundleVerdict[] {
  return runPythonJson('bundle_check.py', cases);
}
