import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isZtwimError } from '../errors.ts';
import { marshalK8sPsatPayload, parseK8sPsatPayload } from './k8s-psat.ts';

test('k8s_psat payload: SPIRE\'s JSON {"cluster","token"} both ways', () => {
  const b = marshalK8sPsatPayload({ cluster: 'c1', token: 'a.b.c' });
  assert.equal(Buffer.from(b).toString(), '{"cluster":"c1","token":"a.b.c"}');
  assert.deepEqual(parseK8sPsatPayload(b), { cluster: 'c1', token: 'a.b.c' });
  // unknown fields are ignored, as Go's json.Unmarshal does
  assert.deepEqual(parseK8sPsatPayload(Buffer.from('{"cluster":"c","token":"t","x":1}')), { cluster: 'c', token: 't' });
});

test("k8s_psat payload: malformed payloads are InvalidArgument with SPIRE's texts", () => {
  const cases: Array<[string, RegExp]> = [
    ['not json', /^failed to unmarshal data payload: /],
    ['[1]', /^failed to unmarshal data payload: not a JSON object$/],
    ['{"cluster":5,"token":"t"}', /^failed to unmarshal data payload: cluster must be a string$/],
    ['{"token":"t"}', /^missing cluster in attestation data$/],
    ['{"cluster":"c"}', /^missing token in attestation data$/],
    ['{"cluster":"c","token":null}', /^missing token in attestation data$/],
  ];
  for (const [text, re] of cases) {
    assert.throws(
      () => parseK8sPsatPayload(Buffer.from(text)),
      (e: unknown) => isZtwimError(e, 'ERR_INVALID_ARGUMENT') && re.test(e.message),
      text,
    );
  }
});
