import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { create } from '@bufbuild/protobuf';
import {
  BatchCreateEntryResponseSchema,
  BundleSchema,
  CountEntriesResponseSchema,
  EntrySchema,
  JoinTokenSchema,
  ListEntriesResponseSchema,
} from '@ztwim/proto';
import { EmptySchema } from '@bufbuild/protobuf/wkt';
import { formatProtoJson, formatStructJson, protoItem } from './proto-json.ts';

const nodeEntry = create(EntrySchema, {
  id: 'b5832a6b-3c89-4145-be1c-79f36e0a38f5',
  spiffeId: { trustDomain: 'example.org', path: '/node1' },
  parentId: { trustDomain: 'example.org', path: '/spire/server' },
  selectors: [{ type: 'join_token', value: 'abc' }],
  createdAt: 1795426515n,
});

describe('formatProtoJson (spire-server -output json)', () => {
  const cases: [string, ReturnType<typeof protoItem>[], string][] = [
    [
      // byte-for-byte what spire-server v1.13.0 printed for `entry create -node ... -output json`
      'batch create result: int64 as strings, unpopulated fields emitted, keys sorted',
      [
        protoItem(
          BatchCreateEntryResponseSchema,
          create(BatchCreateEntryResponseSchema, { results: [{ status: { code: 0, message: 'OK' }, entry: nodeEntry }] }),
        ),
      ],
      '{"results":[{"entry":{"admin":false,"created_at":"1795426515","dns_names":[],"downstream":false,"expires_at":"0","federates_with":[],"hint":"","id":"b5832a6b-3c89-4145-be1c-79f36e0a38f5","jwt_svid_ttl":0,"parent_id":{"path":"/spire/server","trust_domain":"example.org"},"revision_number":"0","selectors":[{"type":"join_token","value":"abc"}],"spiffe_id":{"path":"/node1","trust_domain":"example.org"},"store_svid":false,"x509_svid_ttl":0},"status":{"code":0,"message":"OK"}}]}\n',
    ],
    [
      'unset message fields (null in protojson) are dropped',
      [protoItem(EntrySchema, create(EntrySchema, { id: 'x' }))],
      '{"admin":false,"created_at":"0","dns_names":[],"downstream":false,"expires_at":"0","federates_with":[],"hint":"","id":"x","jwt_svid_ttl":0,"revision_number":"0","selectors":[],"store_svid":false,"x509_svid_ttl":0}\n',
    ],
    ['count (int32 is a number)', [protoItem(CountEntriesResponseSchema, create(CountEntriesResponseSchema, { count: 3 }))], '{"count":3}\n'],
    ['empty list', [protoItem(ListEntriesResponseSchema, create(ListEntriesResponseSchema))], '{"entries":[],"next_page_token":""}\n'],
    ['google.protobuf.Empty', [protoItem(EmptySchema, create(EmptySchema))], '{}\n'],
    [
      'bytes base64, uint64 as string, <>& escaped',
      [
        protoItem(
          BundleSchema,
          create(BundleSchema, { trustDomain: 'a<b>&c', x509Authorities: [{ asn1: new Uint8Array([0xfb, 0xff]) }], sequenceNumber: 18446744073709551615n }),
        ),
      ],
      '{"jwt_authorities":[],"refresh_hint":"0","sequence_number":"18446744073709551615","trust_domain":"a\\u003cb\\u003e\\u0026c","x509_authorities":[{"asn1":"+/8=","tainted":false}]}\n',
    ],
    [
      'several messages ⇒ array',
      [
        protoItem(JoinTokenSchema, create(JoinTokenSchema, { value: 't', expiresAt: 5n })),
        protoItem(CountEntriesResponseSchema, create(CountEntriesResponseSchema, { count: 1 })),
      ],
      '[{"expires_at":"5","value":"t"},{"count":1}]\n',
    ],
    ['no messages ⇒ nothing', [], ''],
  ];
  for (const [name, items, want] of cases) {
    it(name, () => assert.equal(formatProtoJson(items), want));
  }
});

describe('formatStructJson', () => {
  it('prints a one-element array in field order', () => {
    assert.equal(
      formatStructJson([{ x509_svid: ['QQ=='], private_key: 'Qg==', root_cas: ['Qw=='] }]),
      '[{"x509_svid":["QQ=="],"private_key":"Qg==","root_cas":["Qw=="]}]\n',
    );
  });
});
