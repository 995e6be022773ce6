// Field-by-field comparison of our .proto files (as generated into @ztwim/proto) with the
// descriptors the reference Go bindings register: spire-api-sdk (SPIRE server API),
// go-spiffe (Workload API), grpc-go (health) and SPIRE's spire.common. Any difference in a
// field number, type, cardinality, oneof, enum value, method name or streaming kind fails.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ScalarType, type DescEnum, type DescFile, type DescMessage } from '@bufbuild/protobuf';
import {
  file_grpc_health_v1_health,
  file_spire_api_server_agent_v1_agent,
  file_spire_api_server_bundle_v1_bundle,
  file_spire_api_server_debug_v1_debug,
  file_spire_api_server_entry_v1_entry,
  file_spire_api_server_localauthority_v1_localauthority,
  file_spire_api_server_svid_v1_svid,
  file_spire_api_server_trustdomain_v1_trustdomain,
  file_spire_api_types_federationrelationship,
  file_spire_api_types_agent,
  file_spire_api_types_attestation,
  file_spire_api_types_bundle,
  file_spire_api_types_entry,
  file_spire_api_types_federateswith,
  file_spire_api_types_jointoken,
  file_spire_api_types_jwtsvid,
  file_spire_api_types_selector,
  file_spire_api_types_spiffeid,
  file_spire_api_types_status,
  file_spire_api_types_x509svid,
  file_spire_common_common,
  file_workload_workload,
} from '@ztwim/proto';
import { goBuild, INTEROP_DIR } from './lib/peers.ts';

interface Field {
  name: string;
  number: number;
  kind: string;
  repeated: boolean;
  map: boolean;
  typeName: string;
  oneof: string;
}
interface Method {
  name: string;
  input: string;
  output: string;
  clientStreaming: boolean;
  serverStreaming: boolean;
}
interface Dump {
  messages: Record<string, Field[]>;
  enums: Record<string, Record<string, number>>;
  services: Record<string, Method[]>;
}

const ours: DescFile[] = [
  file_workload_workload,
  file_spire_api_types_agent,
  file_spire_api_types_attestation,
  file_spire_api_types_bundle,
  file_spire_api_types_entry,
  file_spire_api_types_federateswith,
  file_spire_api_types_jointoken,
  file_spire_api_types_jwtsvid,
  file_spire_api_types_selector,
  file_spire_api_types_spiffeid,
  file_spire_api_types_status,
  file_spire_api_types_x509svid,
  file_spire_api_server_agent_v1_agent,
  file_spire_api_server_entry_v1_entry,
  file_spire_api_server_svid_v1_svid,
  file_spire_api_server_bundle_v1_bundle,
  file_spire_api_server_debug_v1_debug,
  file_spire_api_types_federationrelationship,
  file_spire_api_server_trustdomain_v1_trustdomain,
  file_spire_api_server_localauthority_v1_localauthority,
  file_grpc_health_v1_health,
  file_spire_common_common,
];

function scalarName(t: ScalarType): string {
  return ScalarType[t].toLowerCase();
}

function dumpOurs(): Dump {
  const d: Dump = { messages: {}, enums: {}, services: {} };
  const addEnum = (e: DescEnum): void => {
    d.enums[e.typeName] = Object.fromEntries(e.values.map((v) => [v.name, v.number]));
  };
  const addMsg = (m: DescMessage): void => {
    d.messages[m.typeName] = m.fields.map((f): Field => {
      const base = { name: f.name, number: f.number, repeated: false, map: false, typeName: '', oneof: f.oneof?.name ?? '' };
      switch (f.fieldKind) {
        case 'scalar':
          return { ...base, kind: scalarName(f.scalar) };
        case 'enum':
          return { ...base, kind: 'enum', typeName: f.enum.typeName };
        case 'message':
          return { ...base, kind: 'message', typeName: f.message.typeName };
        case 'list':
          if (f.listKind === 'scalar') return { ...base, repeated: true, kind: scalarName(f.scalar) };
          if (f.listKind === 'enum') return { ...base, repeated: true, kind: 'enum', typeName: f.enum.typeName };
          return { ...base, repeated: true, kind: 'message', typeName: f.message.typeName };
        case 'map': {
          const v = f.mapKind === 'scalar' ? scalarName(f.scalar) : f.mapKind;
          return { ...base, map: true, kind: `${scalarName(f.mapKey)}->${v}` };
        }
      }
    });
    m.nestedMessages.forEach(addMsg);
    m.nestedEnums.forEach(addEnum);
  };
  for (const file of ours) {
    file.messages.forEach(addMsg);
    file.enums.forEach(addEnum);
    for (const s of file.services) {
      d.services[s.typeName] = s.methods.map((m) => ({
        name: m.name,
        input: m.input.typeName,
        output: m.output.typeName,
        clientStreaming: m.methodKind === 'client_streaming' || m.methodKind === 'bidi_streaming',
        serverStreaming: m.methodKind === 'server_streaming' || m.methodKind === 'bidi_streaming',
      }));
    }
  }
  return d;
}

describe('our .proto descriptors equal the reference Go bindings', () => {
  const bin = goBuild(join(INTEROP_DIR, 'go'), './protodesc');
  const ref = JSON.parse(execFileSync(bin, { encoding: 'utf8', maxBuffer: 64 << 20 })) as Dump;
  const mine = dumpOurs();

  it('defines the messages, enums and services we need', () => {
    // Spot checks that guard the comparison itself from comparing nothing.
    assert.ok(Object.keys(mine.messages).length > 100, `${Object.keys(mine.messages).length} messages`);
    for (const name of [
      'X509SVIDResponse',
      'spire.api.types.Entry',
      'spire.api.server.entry.v1.ListEntriesRequest.Filter',
      'spire.api.server.agent.v1.AttestAgentRequest.Params',
      'spire.common.Bundle',
      'grpc.health.v1.HealthCheckResponse',
    ]) {
      assert.ok(mine.messages[name], `ours lacks ${name}`);
      assert.ok(ref.messages[name], `reference lacks ${name}`);
    }
    assert.deepEqual(Object.keys(mine.services).sort(), [
      'SpiffeWorkloadAPI',
      'grpc.health.v1.Health',
      'spire.api.server.agent.v1.Agent',
      'spire.api.server.bundle.v1.Bundle',
      'spire.api.server.debug.v1.Debug',
      'spire.api.server.entry.v1.Entry',
      'spire.api.server.localauthority.v1.LocalAuthority',
      'spire.api.server.svid.v1.SVID',
      'spire.api.server.trustdomain.v1.TrustDomain',
    ]);
  });

  it('every message has the same fields (name, number, type, cardinality, oneof)', () => {
    for (const [name, fields] of Object.entries(mine.messages)) {
      assert.ok(ref.messages[name], `message ${name} does not exist in the reference`);
      const byNumber = (a: Field, b: Field): number => a.number - b.number;
      assert.deepEqual([...fields].sort(byNumber), [...ref.messages[name]].sort(byNumber), `message ${name}`);
    }
  });

  it('every enum has the same values', () => {
    for (const [name, values] of Object.entries(mine.enums)) {
      assert.deepEqual(values, ref.enums[name], `enum ${name}`);
    }
  });

  it('every service has the same methods (grpc health List is newer than we serve)', () => {
    for (const [name, methods] of Object.entries(mine.services)) {
      const want = (ref.services[name] ?? []).filter((m) => !(name === 'grpc.health.v1.Health' && m.name === 'List'));
      const byName = (a: Method, b: Method): number => a.name.localeCompare(b.name);
      assert.deepEqual([...methods].sort(byName), [...want].sort(byName), `service ${name}`);
    }
  });
});
