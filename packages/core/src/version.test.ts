import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ZTWIM_VERSION } from './version.ts';

describe('ZTWIM_VERSION', () => {
  it("is the version of the packages' package.json (the CLI's and core's)", () => {
    for (const pkg of ['../package.json', '../../cli/package.json']) {
      const json = JSON.parse(readFileSync(new URL(pkg, import.meta.url), 'utf8')) as { version: string };
      assert.equal(ZTWIM_VERSION, json.version, pkg);
    }
  });
});
