import { toJson, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import { goJsonMarshal, removeNulls, type JsonValue } from './go-json.ts';

/** A message paired with its schema, for printing. */
export interface ProtoItem<Desc extends DescMessage = DescMessage> {
  readonly schema: Desc;
  readonly message: MessageShape<Desc>;
}

export function protoItem<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>): ProtoItem {
  return { schema, message } as unknown as ProtoItem;
}

/** protojson with proto field names and unpopulated fields, nulls removed (cliprinter's protojson step). */
export function protoToJsonValue(item: ProtoItem): JsonValue {
  const j = toJson(item.schema, item.message, { useProtoFieldName: true, alwaysEmitImplicit: true }) as JsonValue;
  return removeNulls(j);
}

/**
 * The exact text `spire-server ... -output json` prints for these messages: one compact object
 * (or an array for several messages), newline-terminated. Nothing for no messages.
 */
export function formatProtoJson(items: readonly ProtoItem[]): string {
  if (items.length === 0) return '';
  const values = items.map(protoToJsonValue);
  return goJsonMarshal(values.length === 1 ? (values[0] as JsonValue) : values) + '\n';
}

/**
 * cliprinter's struct JSON: the printed value is always the slice of structs (`[{…}]`), members
 * in struct-field (insertion) order.
 */
export function formatStructJson(values: readonly JsonValue[]): string {
  if (values.length === 0) return '';
  return goJsonMarshal([...values], false) + '\n';
}
