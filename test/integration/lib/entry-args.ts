// Command lines the integration tests give the ztwim CLI more than once.

/** `ztwim server entry create` of one workload entry through the admin socket. */
export function entryCreateArgs(socketPath: string, parentId: string, spiffeId: string, selector: string): string[] {
  return ['server', 'entry', 'create', '-socketPath', socketPath, '-parentID', parentId, '-spiffeID', spiffeId, '-selector', selector];
}
