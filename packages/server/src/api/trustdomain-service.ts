import type { ServiceImpl } from '@connectrpc/connect';
import type { MessageInitShape } from '@bufbuild/protobuf';
import { internal, invalidArgument, isZtwimError, notFound, ZtwimError, type Logger } from '@ztwim/core';
import { SpiffeId, TrustDomain } from '@ztwim/spiffe';
import {
  statusOf,
  type FederationRelationship as ProtoRelationship,
  type FederationRelationshipMask as ProtoMask,
  type FederationRelationshipSchema,
  type TrustDomainService,
} from '@ztwim/proto';
import type { BundleInput, DataStore, FederationRelationship, NewFederationRelationship } from '../datastore/datastore.ts';
import { bundleFromProto, bundleToProto } from './bundle-service.ts';
import { grpcCodeResolver } from './errors.ts';

/** What the TrustDomain API asks of the federation bundle refresher (SPIRE's BundleRefresher). */
export interface BundleRefresher {
  /** Re-reads the relationships (after a create, update or delete). */
  reload(): void;
  /** Fetches the trust domain's bundle now; false when no relationship names it. */
  refresh(trustDomain: string): Promise<boolean>;
}

export interface TrustDomainServiceDeps {
  readonly dataStore: DataStore;
  readonly trustDomain: TrustDomain;
  readonly refresher: BundleRefresher;
  readonly log: Logger;
}

type RelationshipInit = MessageInitShape<typeof FederationRelationshipSchema>;

/** The error text without the SDK's `trustdomain: ` / `spiffeid: ` prefix (go-spiffe's have none). */
const bare = (e: unknown): string => (e as Error).message.replace(/^(spiffeid|trustdomain): /, '');

function parseTd(s: string): string {
  try {
    return TrustDomain.parse(s).name;
  } catch (e) {
    throw invalidArgument(`failed to parse trust domain: ${bare(e)}`);
  }
}

/** SPIRE's api.ProtoToFederationRelationshipWithMask (its error texts). */
export function relationshipFromProto(f: ProtoRelationship, mask?: ProtoMask): { fr: NewFederationRelationship; bundle?: BundleInput } {
  const td = parseTd(f.trustDomain);
  const urlOn = mask === undefined || mask.bundleEndpointUrl;
  const profileOn = mask === undefined || mask.bundleEndpointProfile;
  if (urlOn) {
    let u: URL;
    try {
      u = new URL(f.bundleEndpointUrl);
    } catch {
      throw invalidArgument(`failed to parse bundle endpoint URL: parse ${JSON.stringify(f.bundleEndpointUrl)}: invalid URL`);
    }
    if (u.protocol !== 'https:') throw invalidArgument('bundle endpoint URL must use the https scheme');
    if (u.host === '') throw invalidArgument('bundle endpoint URL must specify the host');
    if (u.username !== '' || u.password !== '') throw invalidArgument('bundle endpoint URL must not contain user info');
  }
  let profile: NewFederationRelationship['bundleEndpointProfile'] = 'https_web';
  let endpointSpiffeId = '';
  if (profileOn) {
    const p = f.bundleEndpointProfile;
    if (p.case === 'httpsSpiffe') {
      try {
        endpointSpiffeId = SpiffeId.parse(p.value.endpointSpiffeId).toString();
      } catch (e) {
        throw invalidArgument(`failed to parse endpoint SPIFFE ID: ${bare(e)}`);
      }
      profile = 'https_spiffe';
    } else if (p.case !== 'httpsWeb') {
      throw invalidArgument('unsupported bundle endpoint profile type: <nil>');
    }
  }
  let bundle: BundleInput | undefined;
  if ((mask === undefined || mask.trustDomainBundle) && f.trustDomainBundle !== undefined) {
    try {
      bundle = bundleFromProto(f.trustDomainBundle);
      if (f.trustDomainBundle.sequenceNumber > 0n) bundle = { ...bundle, spiffeSequence: f.trustDomainBundle.sequenceNumber };
    } catch (e) {
      throw invalidArgument(`failed to parse bundle: ${(e as Error).message}`);
    }
    if (bundle.trustDomain !== td) {
      throw invalidArgument(
        `trust domain bundle (${JSON.stringify(f.trustDomainBundle.trustDomain)}) must match the trust domain of the federation relationship (${JSON.stringify(td)})`,
      );
    }
  }
  return {
    fr: { trustDomain: td, bundleEndpointUrl: urlOn ? f.bundleEndpointUrl : '', bundleEndpointProfile: profile, endpointSpiffeId },
    ...(bundle === undefined ? {} : { bundle }),
  };
}

/** SPIRE's spire.api.server.trustdomain.v1 (local or admin callers: the default policy). */
export function trustDomainService(deps: TrustDomainServiceDeps): ServiceImpl<typeof TrustDomainService> {
  const ds = deps.dataStore;
  const own = deps.trustDomain.name;
  const log = deps.log;

  const toProto = async (fr: FederationRelationship, mask: ProtoMask | undefined): Promise<RelationshipInit> => {
    const on = (k: 'bundleEndpointUrl' | 'bundleEndpointProfile' | 'trustDomainBundle'): boolean => mask === undefined || mask[k];
    const bundle = on('trustDomainBundle') ? await ds.getBundle(fr.trustDomain) : null;
    return {
      trustDomain: fr.trustDomain,
      ...(on('bundleEndpointUrl') ? { bundleEndpointUrl: fr.bundleEndpointUrl } : {}),
      ...(on('bundleEndpointProfile')
        ? {
            bundleEndpointProfile:
              fr.bundleEndpointProfile === 'https_spiffe'
                ? { case: 'httpsSpiffe' as const, value: { endpointSpiffeId: fr.endpointSpiffeId } }
                : { case: 'httpsWeb' as const, value: {} },
          }
        : {}),
      // A foreign bundle's sequence is its own (SPIRE stores what was fetched or given), not the store's.
      ...(bundle === null ? {} : { trustDomainBundle: { ...bundleToProto(bundle), sequenceNumber: bundle.spiffeSequence ?? 0n } }),
    };
  };
  /** SPIRE warns when an https_spiffe endpoint's trust domain has no bundle to authenticate it with. */
  const checkEndpointBundle = async (fr: FederationRelationship): Promise<void> => {
    if (fr.bundleEndpointProfile !== 'https_spiffe') return;
    const endpointTd = SpiffeId.parse(fr.endpointSpiffeId).trustDomain.name;
    if ((await ds.getBundle(endpointTd)) === null) {
      log.warn({ trust_domain_id: fr.trustDomain, endpoint_spiffe_id: fr.endpointSpiffeId }, 'Bundle not found for the endpoint SPIFFE ID trust domain');
    }
  };
  /** `<prefix>: <cause>` keeping the cause's code (SPIRE's api.MakeStatus). */
  const wrap = (prefix: string, e: unknown): ZtwimError =>
    isZtwimError(e) ? new ZtwimError(e.code, `${prefix}: ${e.message}`, { cause: e }) : internal(`${prefix}: ${(e as Error).message}`, { cause: e });

  /** BatchCreate/BatchUpdate: each item converted, written, answered with its own status; one reload after. */
  const writeBatch = async (
    items: readonly ProtoRelationship[],
    inputMask: ProtoMask | undefined,
    outputMask: ProtoMask | undefined,
    write: (parsed: ReturnType<typeof relationshipFromProto>) => Promise<FederationRelationship>,
  ) => {
    const results = [];
    let changed = false;
    for (const item of items) {
      try {
        let parsed: ReturnType<typeof relationshipFromProto>;
        try {
          parsed = relationshipFromProto(item, inputMask);
        } catch (e) {
          throw wrap('failed to convert federation relationship', e);
        }
        const written = await write(parsed);
        if (parsed.bundle === undefined) await checkEndpointBundle(written);
        results.push({ status: statusOf(undefined), federationRelationship: await toProto(written, outputMask) });
        changed = true;
      } catch (e) {
        results.push({ status: statusOf(e, grpcCodeResolver) });
      }
    }
    if (changed) deps.refresher.reload();
    return { results };
  };

  return {
    async listFederationRelationships(req) {
      const r = await ds
        .listFederationRelationships(req.pageSize > 0 ? { pageSize: req.pageSize, pageToken: req.pageToken } : undefined)
        .catch((e: unknown) => {
          throw wrap('failed to list federation relationships', e);
        });
      const federationRelationships = [];
      for (const fr of r.relationships) federationRelationships.push(await toProto(fr, req.outputMask));
      return { federationRelationships, nextPageToken: r.nextPageToken };
    },
    async getFederationRelationship(req) {
      const td = parseTd(req.trustDomain);
      const fr = await ds.getFederationRelationship(td).catch((e: unknown) => {
        throw wrap('failed to fetch federation relationship', e);
      });
      if (fr === null) throw notFound('federation relationship does not exist');
      return toProto(fr, req.outputMask);
    },
    async batchCreateFederationRelationship(req) {
      return writeBatch(req.federationRelationships, undefined, req.outputMask, async (parsed) => {
        if (parsed.fr.trustDomain === own) throw invalidArgument('unable to create federation relationship for server trust domain');
        return ds.createFederationRelationship(parsed.fr, parsed.bundle).catch((e: unknown) => {
          // SPIRE answers Internal for every datastore failure here, a duplicate included.
          throw isZtwimError(e, 'ERR_INVALID_ARGUMENT')
            ? wrap('failed to create federation relationship', e)
            : internal(`failed to create federation relationship: ${(e as Error).message}`, { cause: e });
        });
      });
    },
    async batchUpdateFederationRelationship(req) {
      const mask = req.inputMask;
      const dsMask = mask === undefined ? undefined : { bundleEndpointUrl: mask.bundleEndpointUrl, bundleEndpointProfile: mask.bundleEndpointProfile };
      return writeBatch(req.federationRelationships, mask, req.outputMask, (parsed) =>
        ds.updateFederationRelationship(parsed.fr, dsMask, parsed.bundle).catch((e: unknown) => {
          throw wrap('failed to update federation relationship', e);
        }),
      );
    },
    async batchDeleteFederationRelationship(req) {
      const results = [];
      let changed = false;
      for (const name of req.trustDomains) {
        if (name === '') {
          results.push({ trustDomain: name, status: statusOf(invalidArgument('missing trust domain'), grpcCodeResolver) });
          continue;
        }
        let td: string;
        try {
          td = parseTd(name);
        } catch (e) {
          results.push({ trustDomain: name, status: statusOf(e, grpcCodeResolver) });
          continue;
        }
        try {
          await ds.deleteFederationRelationship(td);
          results.push({ trustDomain: td, status: statusOf(undefined) });
          changed = true;
        } catch (e) {
          const err = isZtwimError(e, 'ERR_NOT_FOUND') ? notFound('federation relationship not found') : wrap('failed to delete federation relationship', e);
          results.push({ trustDomain: td, status: statusOf(err, grpcCodeResolver) });
        }
      }
      if (changed) deps.refresher.reload();
      return { results };
    },
    async refreshBundle(req) {
      const td = parseTd(req.trustDomain);
      const managed = await deps.refresher.refresh(td).catch((e: unknown) => {
        throw internal(`failed to refresh bundle: ${(e as Error).message}`, { cause: e });
      });
      if (!managed) throw notFound(`no relationship with trust domain ${JSON.stringify(td)}`);
      return {};
    },
  };
}
