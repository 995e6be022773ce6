import { Code, ConnectError, type ServiceImpl } from '@connectrpc/connect';
import type { MessageInitShape } from '@bufbuild/protobuf';
import { bundleToWire, invalidArgument, isZtwimError, ZtwimError } from '@ztwim/core';
import { TrustDomain } from '@ztwim/spiffe';
import {
  BatchDeleteFederatedBundleRequest_Mode,
  statusOf,
  type Bundle as ProtoBundle,
  type BundleMask,
  type BundleSchema,
  type BundleService,
} from '@ztwim/proto';
import type { Bundle, BundleDeleteMode, BundleInput, DataStore } from '../datastore/datastore.ts';
import { grpcCodeResolver } from './errors.ts';
import { pageFromProto } from './convert.ts';

export interface BundleServiceDeps {
  readonly dataStore: DataStore;
  readonly trustDomain: TrustDomain;
}

type BundleInit = MessageInitShape<typeof BundleSchema>;

export function bundleToProto(b: Bundle, mask?: BundleMask): BundleInit {
  const w = bundleToWire(b);
  if (mask === undefined) return w;
  return {
    trustDomain: w.trustDomain,
    ...(mask.x509Authorities ? { x509Authorities: w.x509Authorities } : {}),
    ...(mask.jwtAuthorities ? { jwtAuthorities: w.jwtAuthorities } : {}),
    ...(mask.refreshHint ? { refreshHint: w.refreshHint } : {}),
    ...(mask.sequenceNumber ? { sequenceNumber: w.sequenceNumber } : {}),
  };
}

function tdName(s: string): string {
  try {
    return TrustDomain.parse(s).name;
  } catch (e) {
    throw invalidArgument(`malformed trust domain: ${(e as Error).message}`);
  }
}

export function bundleFromProto(b: ProtoBundle): BundleInput {
  const td = tdName(b.trustDomain);
  for (const k of b.jwtAuthorities) {
    if (k.keyId === '') throw invalidArgument('failed to convert bundle: missing key ID');
    if (k.publicKey.length === 0) throw invalidArgument('failed to convert bundle: missing public key');
  }
  return {
    trustDomain: td,
    x509Authorities: b.x509Authorities.map((a) => {
      if (a.asn1.length === 0) throw invalidArgument('failed to convert bundle: missing X.509 authority');
      return { asn1: a.asn1, tainted: a.tainted };
    }),
    jwtAuthorities: b.jwtAuthorities.map((k) => ({ publicKey: k.publicKey, keyId: k.keyId, expiresAt: Number(k.expiresAt), tainted: k.tainted })),
    refreshHint: Number(b.refreshHint),
  };
}

const DELETE_MODES = new Map<BatchDeleteFederatedBundleRequest_Mode, BundleDeleteMode>([
  [BatchDeleteFederatedBundleRequest_Mode.RESTRICT, 'restrict'],
  [BatchDeleteFederatedBundleRequest_Mode.DELETE, 'delete'],
  [BatchDeleteFederatedBundleRequest_Mode.DISSOCIATE, 'dissociate'],
]);

/** SPIRE's Bundle service (spire.api.server.bundle.v1). */
export function bundleService(deps: BundleServiceDeps): ServiceImpl<typeof BundleService> {
  const ds = deps.dataStore;
  const own = deps.trustDomain.name;
  const ownBundle = async (): Promise<Bundle> => {
    const b = await ds.getBundle(own);
    if (b === null) throw new ConnectError('bundle not found', Code.NotFound);
    return b;
  };
  const federated = (name: string): string => {
    const td = tdName(name);
    if (td === own) throw invalidArgument(`"${td}" is this server own trust domain, use GetBundle RPC instead`);
    return td;
  };
  const batch = async (bundles: ProtoBundle[], mask: BundleMask | undefined, op: (b: BundleInput) => Promise<Bundle>) => {
    const results = [];
    for (const pb of bundles) {
      try {
        const input = bundleFromProto(pb);
        if (input.trustDomain === own) throw invalidArgument(`"${own}" is this server own trust domain`);
        results.push({ status: statusOf(undefined), bundle: bundleToProto(await op(input), mask) });
      } catch (e) {
        results.push({ status: statusOf(e, grpcCodeResolver) });
      }
    }
    return { results };
  };
  /** One BatchDeleteFederatedBundle item, with SPIRE's messages; returns the error (undefined = OK). */
  const deleteOne = async (name: string, mode: BundleDeleteMode): Promise<unknown> => {
    let td: string;
    try {
      td = TrustDomain.parse(name).name;
    } catch (e) {
      return invalidArgument(`trust domain argument is not valid: ${(e as Error).message.replace(/^(spiffeid|trustdomain): /, '')}`);
    }
    if (td === own) return invalidArgument('removing the bundle for the server trust domain is not allowed');
    try {
      await ds.deleteBundle(td, mode);
      return undefined;
    } catch (e) {
      if (isZtwimError(e, 'ERR_NOT_FOUND')) return new ConnectError('bundle not found', Code.NotFound);
      if (isZtwimError(e)) return new ZtwimError(e.code, `failed to delete federated bundle: ${e.message}`, { cause: e });
      throw e;
    }
  };
  return {
    async countBundles() {
      return { count: await ds.countBundles() };
    },
    async getBundle(req) {
      return bundleToProto(await ownBundle(), req.outputMask);
    },
    async appendBundle(req) {
      const current = await ownBundle();
      const updated = await ds.appendBundle({
        trustDomain: own,
        x509Authorities: req.x509Authorities.map((a) => ({ asn1: a.asn1, tainted: false })),
        jwtAuthorities: req.jwtAuthorities.map((k) => {
          if (k.keyId === '') throw invalidArgument('failed to convert JWT authority: missing key ID');
          return { publicKey: k.publicKey, keyId: k.keyId, expiresAt: Number(k.expiresAt), tainted: false };
        }),
        refreshHint: current.refreshHint,
      });
      return bundleToProto(updated, req.outputMask);
    },
    async publishJWTAuthority() {
      throw new ConnectError('publishing JWT authorities requires an upstream authority; not supported', Code.Unimplemented);
    },
    async listFederatedBundles(req) {
      const r = await ds.listBundles(pageFromProto(req));
      return { bundles: r.bundles.filter((b) => b.trustDomain !== own).map((b) => bundleToProto(b, req.outputMask)), nextPageToken: r.nextPageToken };
    },
    async getFederatedBundle(req) {
      const td = federated(req.trustDomain);
      const b = await ds.getBundle(td);
      if (b === null) throw new ConnectError('bundle not found', Code.NotFound);
      return bundleToProto(b, req.outputMask);
    },
    async batchCreateFederatedBundle(req) {
      return batch(req.bundle, req.outputMask, async (b) => {
        if ((await ds.getBundle(b.trustDomain)) !== null) throw new ConnectError('bundle already exists', Code.AlreadyExists);
        return ds.setBundle(b);
      });
    },
    async batchUpdateFederatedBundle(req) {
      return batch(req.bundle, req.outputMask, async (b) => {
        const cur = await ds.getBundle(b.trustDomain);
        if (cur === null) throw new ConnectError('bundle not found', Code.NotFound);
        const m = req.inputMask;
        return ds.setBundle({
          trustDomain: b.trustDomain,
          x509Authorities: m === undefined || m.x509Authorities ? b.x509Authorities : cur.x509Authorities,
          jwtAuthorities: m === undefined || m.jwtAuthorities ? b.jwtAuthorities : cur.jwtAuthorities,
          refreshHint: m === undefined || m.refreshHint ? b.refreshHint : cur.refreshHint,
        });
      });
    },
    async batchSetFederatedBundle(req) {
      return batch(req.bundle, req.outputMask, (b) => ds.setBundle(b));
    },
    async batchDeleteFederatedBundle(req) {
      const mode = DELETE_MODES.get(req.mode);
      if (mode === undefined) throw invalidArgument(`failed to parse deletion mode: unhandled delete mode "${req.mode}"`);
      const results = [];
      for (const name of req.trustDomains) {
        results.push({ status: statusOf(await deleteOne(name, mode), grpcCodeResolver), trustDomain: name });
      }
      return { results };
    },
  };
}
