/** The `code` of a Node system error (`ENOENT`, `EEXIST`, ...), if it has one. */
export function errnoOf(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string' ? e.code : undefined;
}
