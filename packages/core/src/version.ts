// The ztwim release every command, server and agent reports (`ztwim version`, the CSI driver's
// vendor version, the server's ServerInfo). Kept equal to the packages' version by version.test.ts.
export const ZTWIM_VERSION = '0.1.0';
