import { Code, ConnectError, type HandlerContext, type ServiceImpl } from '@connectrpc/connect';
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { ZtwimError, invalidArgument, isZtwimError } from '@ztwim/core';
import type { TrustDomain } from '@ztwim/spiffe';
import {
  EntrySchema,
  GetAuthorizedEntriesResponseSchema,
  statusOf,
  withEncoding,
  type Entry as ProtoEntry,
  type EntryService,
  type BatchCreateEntryResponse_ResultSchema,
  type SyncAuthorizedEntriesRequest,
  type SyncAuthorizedEntriesResponseSchema,
} from '@ztwim/proto';
import {
  SimilarEntryError,
  type BatchCreateResult,
  type DataStore,
  type Entry,
  type EntryMask,
  type EntryUpdate,
  type NewEntry,
} from '../datastore/datastore.ts';
import type { EntryOutputMask } from './convert.ts';
import { callerKey } from './caller.ts';
import { entryFilterFromProto, entryFromProto, entryMaskFromProto, entryToProto, pageFromProto } from './convert.ts';
import { encodeEntryField } from './entry-wire.ts';
import { grpcCodeResolver } from './errors.ts';

export interface EntryServiceDeps {
  readonly dataStore: DataStore;
  readonly trustDomain: TrustDomain;
  /** The node selectors of an agent (for node-alias resolution). */
  readonly nodeSelectors: (agentId: string) => Promise<Array<{ type: string; value: string }>>;
  /** Called after every entry write call (create, update, delete), e.g. to hint agents. */
  readonly onWrite?: () => void;
  /** The wire forms of authorised-entry answers, shared with whoever prepares them (a new one if absent). */
  readonly answers?: AuthorizedAnswers;
}

type AuthorizedResponse = ReturnType<typeof create<typeof GetAuthorizedEntriesResponseSchema>>;

/**
 * The wire forms of authorised-entry answers, kept across calls. The datastore hands out the same
 * (immutable) Entry objects to repeated authorised-entry lookups until an entry changes, so an
 * entry's unmasked wire form is built once per entry version. GetAuthorizedEntries without a mask
 * goes one step further: each entry is kept encoded as one occurrence of the response's `entries`
 * field (tag, length, bytes), and the response body is their concatenation, handed out with its
 * encoding (withEncoding) so the direct unary path writes it as is. The message still holds the
 * same bytes, as one raw occurrence that protobuf-es writes verbatim (tag byte + the rest), so
 * encoding it anywhere else gives the very same body. The store hands out the same frozen array
 * while an agent's entries are unchanged: the whole answer (message and bytes) is kept per array,
 * so repeated syncs allocate nothing.
 */
export class AuthorizedAnswers {
  readonly #wire = new WeakMap<Entry, ProtoEntry>();
  readonly #fields = new WeakMap<Entry, Uint8Array>();
  readonly #answers = new WeakMap<readonly Entry[], AuthorizedResponse>();
  readonly #entriesField = GetAuthorizedEntriesResponseSchema.field.entries.number;
  readonly #tagLength = new BinaryWriter().tag(this.#entriesField, WireType.LengthDelimited).finish().length;

  /** The entry as a message, through `mask`; built once per entry version when unmasked. */
  toProto(e: Entry, mask: EntryOutputMask | undefined): ProtoEntry | ReturnType<typeof entryToProto> {
    if (mask !== undefined) return entryToProto(e, mask);
    let p = this.#wire.get(e);
    if (p === undefined) this.#wire.set(e, (p = create(EntrySchema, entryToProto(e))));
    return p;
  }

  /** The unmasked GetAuthorizedEntries response for `entries`, with its encoding. */
  encoded(entries: readonly Entry[]): AuthorizedResponse {
    const hit = this.#answers.get(entries);
    if (hit !== undefined) return hit;
    const no = this.#entriesField;
    const parts: Uint8Array[] = [];
    for (const e of entries) {
      let f = this.#fields.get(e);
      if (f === undefined) this.#fields.set(e, (f = encodeEntryField(no, e)));
      parts.push(f);
    }
    const body = Buffer.concat(parts);
    const res = create(GetAuthorizedEntriesResponseSchema);
    // The unknown field writes its tag back in front of the rest.
    if (body.length > 0) res.$unknown = [{ no, wireType: WireType.LengthDelimited, data: body.subarray(this.#tagLength) }];
    if (Object.isFrozen(entries)) this.#answers.set(entries, res);
    return withEncoding(res, body);
  }
}

const SYNC_PAGE = 500;

function requireAgent(ctx: HandlerContext): string {
  const id = ctx.values.get(callerKey).agentId;
  if (id === undefined) throw new ConnectError('caller is not an agent', Code.PermissionDenied);
  return id.toString();
}

/**
 * Computes and encodes the authorised entries of an agent that has just attested, ahead of its
 * first GetAuthorizedEntries (which the agent sends on a new mTLS connection right after): that
 * call then finds the same answer in the index's and `answers`' caches, unless an entry changed
 * meanwhile, in which case it computes a fresh one as always. Nothing is answered from here.
 */
export async function prepareAuthorizedAnswer(
  deps: Pick<EntryServiceDeps, 'dataStore' | 'nodeSelectors'> & { readonly answers: AuthorizedAnswers },
  agentId: string,
): Promise<void> {
  deps.answers.encoded(await deps.dataStore.listAuthorizedEntries(agentId, await deps.nodeSelectors(agentId)));
}

/** SPIRE's Entry service (spire.api.server.entry.v1). */
export function entryService(deps: EntryServiceDeps): ServiceImpl<typeof EntryService> {
  const ds = deps.dataStore;
  const authorized = async (ctx: HandlerContext): Promise<readonly Entry[]> => {
    const agentId = requireAgent(ctx);
    return ds.listAuthorizedEntries(agentId, await deps.nodeSelectors(agentId));
  };
  const answers = deps.answers ?? new AuthorizedAnswers();
  return {
    async countEntries(req) {
      return { count: await ds.countEntries(entryFilterFromProto(req.filter)) };
    },

    async listEntries(req) {
      if (req.pageSize < 0) throw invalidArgument('page size must not be negative');
      const r = await ds.listEntries(entryFilterFromProto(req.filter), pageFromProto(req));
      const mask = entryMaskFromProto(req.outputMask);
      return { entries: r.entries.map((e) => entryToProto(e, mask)), nextPageToken: r.nextPageToken };
    },

    async getEntry(req) {
      if (req.id === '') throw invalidArgument('missing ID');
      const e = await ds.getEntry(req.id);
      if (e === null) throw new ConnectError('entry not found', Code.NotFound);
      return entryToProto(e, entryMaskFromProto(req.outputMask));
    },

    async batchCreateEntry(req) {
      const mask = entryMaskFromProto(req.outputMask);
      type Result = MessageInitShape<typeof BatchCreateEntryResponse_ResultSchema>;
      const failed = (e: unknown): Result => {
        if (e instanceof SimilarEntryError) {
          return { status: { code: Code.AlreadyExists, message: 'similar entry already exists' }, entry: entryToProto(e.existing, mask) };
        }
        if (isZtwimError(e, 'ERR_ALREADY_EXISTS')) return { status: { code: Code.AlreadyExists, message: `failed to create entry: ${e.message}` } };
        return { status: statusOf(e, grpcCodeResolver) };
      };
      // Per-entry results as if each entry were created on its own (a later entry similar to an
      // earlier one of the same request gets AlreadyExists with the earlier one), but the valid
      // entries are written in one datastore transaction: one commit (fsync) per request, not per entry.
      const results: Array<Result | undefined> = [];
      const valid: Array<{ at: number; entry: NewEntry }> = [];
      for (const pe of req.entries) {
        try {
          const converted = entryFromProto(pe, deps.trustDomain);
          await requireFederatedBundles(ds, converted.federatesWith ?? [], 'create');
          valid.push({ at: results.length, entry: converted });
          results.push(undefined);
        } catch (e) {
          results.push(failed(e));
        }
      }
      if (valid.length > 0) {
        let created: BatchCreateResult[] | undefined;
        let txError: unknown;
        try {
          created = await ds.createEntries(valid.map((v) => v.entry));
        } catch (e) {
          txError = e; // the whole transaction failed: every entry of it gets the error
        }
        valid.forEach((v, i) => {
          const r = created?.[i];
          results[v.at] =
            r === undefined
              ? failed(txError ?? new ZtwimError('ERR_DATASTORE', 'datastore: batch result missing'))
              : r.ok
                ? { status: statusOf(undefined), entry: entryToProto(r.entry, mask) }
                : failed(r.error);
        });
      }
      deps.onWrite?.();
      return { results: results.map((r) => r ?? failed(new ZtwimError('ERR_DATASTORE', 'datastore: batch result missing'))) };
    },

    async batchUpdateEntry(req) {
      const inMask = toUpdateMask(entryMaskFromProto(req.inputMask));
      const outMask = entryMaskFromProto(req.outputMask);
      const results = [];
      for (const pe of req.entries) {
        try {
          if (pe.id === '') throw invalidArgument('failed to convert entry: missing entry ID');
          const converted = updateFromProto(pe, deps.trustDomain, inMask);
          await requireFederatedBundles(ds, converted.federatesWith ?? [], 'update');
          const updated = await ds.updateEntry(converted, inMask);
          results.push({ status: statusOf(undefined), entry: entryToProto(updated, outMask) });
        } catch (e) {
          results.push({ status: statusOf(e, grpcCodeResolver) });
        }
      }
      deps.onWrite?.();
      return { results };
    },

    async batchDeleteEntry(req) {
      const results = [];
      for (const id of req.ids) {
        try {
          if (id === '') throw invalidArgument('missing entry ID');
          await ds.deleteEntry(id);
          results.push({ status: statusOf(undefined), id });
        } catch (e) {
          results.push({ status: statusOf(e, grpcCodeResolver), id });
        }
      }
      deps.onWrite?.();
      return { results };
    },

    async getAuthorizedEntries(req, ctx) {
      const mask = entryMaskFromProto(req.outputMask);
      const entries = await authorized(ctx);
      if (mask === undefined) return answers.encoded(entries);
      return { entries: entries.map((e) => answers.toProto(e, mask)) };
    },

    async *syncAuthorizedEntries(requests: AsyncIterable<SyncAuthorizedEntriesRequest>, ctx) {
      const it = requests[Symbol.asyncIterator]();
      const first = await it.next();
      if (first.done === true) return;
      if (first.value.ids.length > 0) throw invalidArgument('specifying IDs on initial request is not supported');
      const mask = entryMaskFromProto(first.value.outputMask);
      if (mask !== undefined && mask.revisionNumber !== true) throw invalidArgument('revision number cannot be masked');
      const entries = await authorized(ctx);
      type Resp = MessageInitShape<typeof SyncAuthorizedEntriesResponseSchema>;
      if (entries.length <= SYNC_PAGE) {
        yield { entries: entries.map((e) => answers.toProto(e, mask)) } satisfies Resp;
        return;
      }
      const byId = new Map(entries.map((e) => [e.id, e]));
      for (let i = 0; i < entries.length; i += SYNC_PAGE) {
        const page = entries.slice(i, i + SYNC_PAGE);
        yield {
          entryRevisions: page.map((e) => ({ id: e.id, revisionNumber: BigInt(e.revisionNumber), createdAt: BigInt(e.createdAt) })),
          more: i + SYNC_PAGE < entries.length,
        } satisfies Resp;
      }
      for (;;) {
        const next = await it.next();
        if (next.done === true) return;
        const wanted = next.value.ids.map((id) => byId.get(id)).filter((e): e is Entry => e !== undefined);
        if (wanted.length === 0) {
          yield { entries: [], more: false } satisfies Resp;
          continue;
        }
        for (let i = 0; i < wanted.length; i += SYNC_PAGE) {
          yield { entries: wanted.slice(i, i + SYNC_PAGE).map((e) => answers.toProto(e, mask)), more: i + SYNC_PAGE < wanted.length } satisfies Resp;
        }
      }
    },
  };
}

/**
 * Entries may only federate with trust domains whose bundle the server has (as SPIRE's datastore
 * checks), with spire-server's text: no datastore layer name in it.
 */
async function requireFederatedBundles(ds: DataStore, federatesWith: readonly string[], op: 'create' | 'update'): Promise<void> {
  for (const id of federatesWith) {
    const name = id.replace(/^spiffe:\/\//, '');
    if ((await ds.getBundle(name)) === null) {
      throw new ConnectError(`failed to ${op} entry: unable to find federated bundle "${id}"`, Code.Internal);
    }
  }
}

function toUpdateMask(m: EntryOutputMask | undefined): EntryMask | undefined {
  if (m === undefined) return undefined;
  const { revisionNumber: _r, createdAt: _c, ...rest } = m;
  return rest;
}

function updateFromProto(pe: Parameters<typeof entryFromProto>[0], td: TrustDomain, mask: EntryMask | undefined): EntryUpdate {
  if (mask === undefined) {
    const full = entryFromProto(pe, td);
    return {
      id: pe.id,
      spiffeId: full.spiffeId,
      parentId: full.parentId,
      selectors: full.selectors,
      x509SvidTtl: full.x509SvidTtl ?? 0,
      jwtSvidTtl: full.jwtSvidTtl ?? 0,
      federatesWith: full.federatesWith ?? [],
      admin: full.admin ?? false,
      downstream: full.downstream ?? false,
      expiresAt: full.expiresAt ?? 0,
      dnsNames: full.dnsNames ?? [],
      storeSvid: full.storeSvid ?? false,
      hint: full.hint ?? '',
    };
  }
  // With an input mask only the masked fields are validated and changed.
  const patched = {
    ...pe,
    spiffeId: mask.spiffeId === true ? pe.spiffeId : { trustDomain: td.name, path: '/placeholder' },
    parentId: mask.parentId === true ? pe.parentId : { trustDomain: td.name, path: '/placeholder' },
    selectors: mask.selectors === true ? pe.selectors : [{ type: 'placeholder', value: 'placeholder' }],
  } as typeof pe;
  const full = entryFromProto(patched, td);
  const out: { -readonly [K in keyof EntryUpdate]: EntryUpdate[K] } = { id: pe.id };
  if (mask.spiffeId === true) out.spiffeId = full.spiffeId;
  if (mask.parentId === true) out.parentId = full.parentId;
  if (mask.selectors === true) out.selectors = full.selectors;
  if (mask.x509SvidTtl === true) out.x509SvidTtl = full.x509SvidTtl ?? 0;
  if (mask.jwtSvidTtl === true) out.jwtSvidTtl = full.jwtSvidTtl ?? 0;
  if (mask.federatesWith === true) out.federatesWith = full.federatesWith ?? [];
  if (mask.admin === true) out.admin = full.admin ?? false;
  if (mask.downstream === true) out.downstream = full.downstream ?? false;
  if (mask.expiresAt === true) out.expiresAt = full.expiresAt ?? 0;
  if (mask.dnsNames === true) out.dnsNames = full.dnsNames ?? [];
  if (mask.storeSvid === true) out.storeSvid = full.storeSvid ?? false;
  if (mask.hint === true) out.hint = full.hint ?? '';
  return out;
}
