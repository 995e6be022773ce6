// The registrar's admission webhook with its X509-SVID from ztwim's own server (in-process).
import { registrarWebhookSuite } from '../interop/lib/registrar-webhook.ts';
import { startZtwimAdminServer } from '../interop/lib/ztwim-server.ts';

registrarWebhookSuite('a ztwim server', () => startZtwimAdminServer({ trustDomain: 'example.org' }));
