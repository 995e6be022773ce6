import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkNameConstraints } from './name-constraints.ts';
import type { NameConstraintSubtree } from './x509.ts';

const uri = (v: string): NameConstraintSubtree => ({ kind: 6, value: new TextEncoder().encode(v) });
const dns = (v: string): NameConstraintSubtree => ({ kind: 2, value: new TextEncoder().encode(v) });

test('checkNameConstraints applies permitted and excluded URI/DNS subtrees with domain matching', () => {
  const cases: Array<[string, NameConstraintSubtree[], NameConstraintSubtree[], string[], string[], RegExp | undefined]> = [
    ['permitted exact host', [uri('example.org')], [], ['spiffe://example.org/w'], [], undefined],
    ['permitted covers subdomain', [uri('example.org')], [], ['spiffe://a.example.org/w'], [], undefined],
    ['leading dot excludes the host itself', [uri('.example.org')], [], ['spiffe://example.org/w'], [], /not permitted/],
    ['leading dot permits subdomains', [uri('.example.org')], [], ['spiffe://a.example.org/w'], [], undefined],
    ['suffix without dot boundary is not a match', [uri('example.org')], [], ['spiffe://badexample.org/w'], [], /not permitted/],
    ['excluded wins', [uri('example.org')], [uri('bad.example.org')], ['spiffe://bad.example.org/w'], [], /excluded/],
    ['DNS permitted', [dns('example.org')], [], [], ['w.example.org'], undefined],
    ['DNS not permitted', [dns('example.org')], [], [], ['w.other.org'], /not permitted/],
    ['URI constraint does not restrict DNS names', [uri('example.org')], [], [], ['w.other.org'], undefined],
    ['IP-address URI host cannot be checked', [uri('example.org')], [], ['spiffe://1.2.3.4/w'], [], /cannot check/],
    [
      'unsupported constraint type fails closed',
      [{ kind: 7, value: Uint8Array.from([10, 0, 0, 0, 255, 0, 0, 0]) }],
      [],
      ['spiffe://example.org/w'],
      [],
      /unsupported/,
    ],
  ];
  for (const [name, permitted, excluded, uris, dnsNames, want] of cases) {
    const got = checkNameConstraints({ permitted, excluded }, uris, dnsNames);
    if (want === undefined) assert.equal(got, undefined, name);
    else assert.match(got ?? '', want, name);
  }
});
