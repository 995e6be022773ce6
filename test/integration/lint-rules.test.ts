// The project's own lint rules (scripts/eslint/plugin.mjs, wired in eslint.config.js) catch what
// they are for, where they are for it: linted as if the text were the file named.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ESLint } from 'eslint';

const root = new URL('../..', import.meta.url).pathname;
const eslint = new ESLint({ cwd: root });

async function rulesHit(filePath: string, code: string): Promise<string[]> {
  const [r] = await eslint.lintText(code, { filePath: `${root}${filePath}` });
  assert.ok(r !== undefined);
  return r.messages.map((m) => m.ruleId ?? `fatal: ${m.message}`);
}

describe('lint rules', () => {
  it('ztwim/no-bare-error: a bare Error in a package source that depends on @ztwim/core, not in its tests or the CLI', async () => {
    const code = "export function f(): never {\n  throw new Error('boom');\n}\n";
    assert.deepEqual(await rulesHit('packages/server/src/lint-probe.ts', code), ['ztwim/no-bare-error']);
    assert.deepEqual(await rulesHit('packages/agent/src/lint-probe.ts', "export const e = Error('x');\n"), ['ztwim/no-bare-error']);
    assert.deepEqual(await rulesHit('packages/server/src/lint-probe.test.ts', code), []);
    assert.deepEqual(await rulesHit('packages/cli/src/lint-probe.ts', code), []);
    assert.deepEqual(await rulesHit('packages/server/src/lint-probe.ts', "import { internal } from '@ztwim/core';\nexport const e = internal('boom');\n"), []);
  });

  it('ztwim/hash-private: the private keyword in a file that is not on the allow-list', async () => {
    const code = 'export class A {\n  private x = 1;\n  get y(): number {\n    return this.x;\n  }\n}\n';
    assert.deepEqual(await rulesHit('packages/server/src/lint-probe.ts', code), ['ztwim/hash-private']);
    assert.deepEqual(await rulesHit('packages/acme/src/acme.ts', code), [], 'an allow-listed file');
    const ok = 'export class A {\n  #x = 1;\n  private constructor() {}\n  static make(): A {\n    return new A();\n  }\n}\n';
    assert.deepEqual(await rulesHit('packages/server/src/lint-probe.ts', ok), []);
  });

  it('ztwim/log-field-names: a literal log field name that is not in LOG_FIELDS', async () => {
    const code =
      "import type { Logger } from '@ztwim/core';\nexport function f(log: Logger): void {\n  log.info({ spiffeId: 'a', trust_domain: 'b' }, 'Started');\n  log.child({ socketPath: 'c' });\n}\n";
    assert.deepEqual(await rulesHit('packages/agent/src/lint-probe.ts', code), ['ztwim/log-field-names', 'ztwim/log-field-names']);
    assert.deepEqual(await rulesHit('packages/agent/src/lint-probe.test.ts', code), []);
  });

  it('ztwim/error-message-style: a typed error message that starts with a capitalised word or ends with a period', async () => {
    const code = [
      "import { internal, invalidArgument, ZtwimError } from '@ztwim/core';",
      "import { SpiffeError } from '@ztwim/spiffe';",
      "export const a = internal('Cannot read the key');",
      'export const b = invalidArgument(`bad value ${String(1)}.`);',
      "export const c = new ZtwimError('ERR_CONFIG', `Invalid ${String(2)}`);",
      "export const d = new SpiffeError('invalid_spiffe_id', 'spiffeid: bad path.');",
      '',
    ].join('\n');
    assert.deepEqual(await rulesHit('packages/server/src/lint-probe.ts', code), Array(4).fill('ztwim/error-message-style'));
    assert.deepEqual(await rulesHit('packages/server/src/lint-probe.test.ts', code), [], 'tests may word their own errors');
    const ok = [
      "import { internal, unavailable } from '@ztwim/core';",
      "export const a = internal('JWT-SVID: no key for kid');",
      'export const b = unavailable(`TokenReview failed: ${String(3)}`);',
      "export const c = internal('waiting for the bundle...');",
      'export const d = internal(String(4));',
      '',
    ].join('\n');
    assert.deepEqual(await rulesHit('packages/server/src/lint-probe.ts', ok), [], 'acronyms and identifiers may lead; an ellipsis is no period');
  });

  it('ztwim/log-message-style: a log message that starts lowercase or ends with a period', async () => {
    const code = [
      "import type { Logger } from '@ztwim/core';",
      'export function f(log: Logger, o: { logger: Logger }, lost: boolean): void {',
      "  log.info({ entries: 1 }, 'entries fetched');",
      "  o.logger.warn('k8s: lease lost');",
      "  log.error({}, lost ? 'Lost leadership' : 'stopped leading');",
      '  log.debug({}, `Minted ${String(2)} SVIDs.`);',
      '}',
      '',
    ].join('\n');
    assert.deepEqual(await rulesHit('packages/agent/src/lint-probe.ts', code), Array(4).fill('ztwim/log-message-style'));
    assert.deepEqual(await rulesHit('packages/agent/src/lint-probe.test.ts', code), [], 'tests may log as they like');
    const ok = [
      "import type { Logger } from '@ztwim/core';",
      'export function f(log: Logger, p: { warn(at: string, msg: string): void }, lost: boolean): void {',
      "  log.info({ entries: 1 }, 'First sync: entries fetched');",
      "  log.warn('k8s: Lease lost');",
      "  log.error({}, lost ? 'Lost leadership' : 'Stopped leading');",
      "  log.error({}, 'onStartedLeading failed');",
      "  log.info({}, 'Waiting for the bundle...');",
      "  p.warn('server.default_svid_ttl', 'is deprecated');",
      "  console.warn('not a log line.');",
      '}',
      '',
    ].join('\n');
    assert.deepEqual(
      await rulesHit('packages/agent/src/lint-probe.ts', ok),
      [],
      'a subsystem prefix or an identifier may lead; an ellipsis is no period; only loggers are checked',
    );
    const fixer = new ESLint({ cwd: root, fix: true });
    const [out] = await fixer.lintText(code, { filePath: `${root}packages/agent/src/lint-probe.ts` });
    assert.match(
      out?.output ?? '',
      /'Entries fetched'[\s\S]*'k8s: Lease lost'[\s\S]*'Lost leadership' : 'Stopped leading'/,
      '--fix capitalises the first letter',
    );
  });

  it('@typescript-eslint/no-explicit-any in package sources', async () => {
    assert.deepEqual(await rulesHit('packages/core/src/lint-probe.ts', 'export function f(x: any): void {\n  void x;\n}\n'), [
      '@typescript-eslint/no-explicit-any',
    ]);
  });
});
