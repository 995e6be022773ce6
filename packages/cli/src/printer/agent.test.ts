import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { create } from '@bufbuild/protobuf';
import { AgentSchema } from '@ztwim/proto';
import { formatAgent, formatAgentCount, formatAgentList, formatAgentShow } from './agent.ts';

// The expected texts assume the local zone is UTC only for the expiration line; it is
// normalised so the tests do not depend on the machine's TZ.
const normTime = (s: string): string => s.replace(/(Expiration time {3}: ).*\n/g, '$1<t>\n');

const agent = create(AgentSchema, {
  id: { trustDomain: 'example.org', path: '/spire/agent/join_token/tok' },
  attestationType: 'join_token',
  x509svidSerialNumber: '59065167785299550568418311101047907958',
  x509svidExpiresAt: 1999999999n,
  selectors: [{ type: 'join_token', value: 'tok' }],
  canReattest: false,
});

describe('agent printers (18-char labels)', () => {
  const cases: [string, string, string][] = [
    [
      'block',
      formatAgent(agent),
      'SPIFFE ID         : spiffe://example.org/spire/agent/join_token/tok\nAttestation type  : join_token\nExpiration time   : <t>\nSerial number     : 59065167785299550568418311101047907958\nCan re-attest     : false\n\n',
    ],
    [
      'banned agent shows Banned instead of the serial',
      formatAgent(create(AgentSchema, { ...agent, banned: true, x509svidSerialNumber: '', canReattest: true })),
      'SPIFFE ID         : spiffe://example.org/spire/agent/join_token/tok\nAttestation type  : join_token\nExpiration time   : <t>\nBanned            : true\nCan re-attest     : true\n\n',
    ],
    ['empty list', formatAgentList([]), 'No attested agents found\n'],
    ['one agent', formatAgentList([agent]).split('\n\n')[0] as string, 'Found 1 attested agent:'],
    ['two agents', formatAgentList([agent, agent]).split('\n\n')[0] as string, 'Found 2 attested agents:'],
    [
      'show adds selectors after the block',
      formatAgentShow(agent),
      'Found an attested agent given its SPIFFE ID\n\nSPIFFE ID         : spiffe://example.org/spire/agent/join_token/tok\nAttestation type  : join_token\nExpiration time   : <t>\nSerial number     : 59065167785299550568418311101047907958\nCan re-attest     : false\n\nSelectors         : join_token:tok\n',
    ],
    ['count 1', formatAgentCount(1), '1 attested agent\n'],
    ['count 0', formatAgentCount(0), '0 attested agents\n'],
  ];
  for (const [name, got, want] of cases) it(name, () => assert.equal(normTime(got), want));
});
