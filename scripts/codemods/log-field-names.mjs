#!/usr/bin/env node
// Renames log field names that are not in @ztwim/core's table (packages/core/src/telemetry/names.ts)
// to the table's snake_case names, in the object literals passed to logger calls
// (`log.info({ ... }, 'msg')`, `.child({ ... })`) of the package sources. Idempotent: run it after a
// merge (`node scripts/codemods/log-field-names.mjs`), then `npm run lint` finds what it cannot map.
import { readFileSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import ts from 'typescript';

/** camelCase names seen in the tree → the table's names. */
const RENAMES = {
  spiffeId: 'spiffe_id',
  entryId: 'entry_id',
  trustDomain: 'trust_domain',
  socketPath: 'socket_path',
  keyId: 'key_id',
  notAfter: 'not_after',
};
const METHODS = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'child']);

function logFieldObjects(sf) {
  const out = [];
  const visit = (n) => {
    if (ts.isCallExpression(n) && ts.isPropertyAccessExpression(n.expression) && METHODS.has(n.expression.name.text)) {
      const [a0] = n.arguments;
      if (a0 !== undefined && ts.isObjectLiteralExpression(a0)) out.push(a0);
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return out;
}

const root = new URL('../..', import.meta.url).pathname;
const files = execFileSync('git', ['ls-files', 'packages/*/src/*.ts'], { cwd: root, encoding: 'utf8' })
  .split('\n')
  .filter((f) => f !== '' && !/src\/gen\/|workload\/proto\//.test(f));
let changed = 0;
for (const f of files) {
  const path = `${root}${f}`;
  const text = readFileSync(path, 'utf8');
  const sf = ts.createSourceFile(f, text, ts.ScriptTarget.Latest, true);
  const edits = [];
  for (const obj of logFieldObjects(sf)) {
    for (const p of obj.properties) {
      const to = p.name !== undefined && (ts.isIdentifier(p.name) || ts.isStringLiteral(p.name)) ? RENAMES[p.name.text] : undefined;
      if (to === undefined) continue;
      if (ts.isShorthandPropertyAssignment(p)) edits.push([p.name.getStart(sf), p.name.end, `${to}: ${p.name.text}`]);
      else if (ts.isPropertyAssignment(p)) edits.push([p.name.getStart(sf), p.name.end, to]);
    }
  }
  if (edits.length === 0) continue;
  let out = text;
  for (const [s, e, r] of edits.sort((a, b) => b[0] - a[0])) out = out.slice(0, s) + r + out.slice(e);
  writeFileSync(path, out);
  changed++;
  console.log(`${f}: ${edits.length} field name(s)`);
}
console.log(`log-field-names: ${changed} file(s) changed`);
