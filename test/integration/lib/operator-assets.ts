// Reading the operator's install files in tests (operator-install-assets, operator-helm-chart).
import { existsSync, readFileSync } from 'node:fs';
import assert from 'node:assert/strict';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { REPO_ROOT } from '../../interop/lib/peers.ts';

export const CACHE = process.env['ZTWIM_CACHE'] ?? join(homedir(), '.cache', 'ztwim');
export interface Obj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [k: string]: unknown;
}
export const docs = (text: string): Obj[] =>
  parseAllDocuments(text)
    .map((d) => d.toJS() as Obj)
    .filter((o) => o !== null);
export const read = (p: string): string => readFileSync(join(REPO_ROOT, p), 'utf8');
export const need = (bin: string, setup: string): string => {
  assert.ok(existsSync(bin), `${bin} is missing: run ${setup}`);
  return bin;
};
