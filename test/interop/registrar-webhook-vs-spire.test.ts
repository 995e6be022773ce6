// The registrar's admission webhook with its X509-SVID minted by a real spire-server v1.13.0
// through the SVID API over the admin socket: the same registrar works with either server.
import { registrarWebhookSuite } from './lib/registrar-webhook.ts';
import { startSpireAdminServer } from './lib/spire-admin.ts';

registrarWebhookSuite('spire-server v1.13.0', () => startSpireAdminServer({ trustDomain: 'example.org' }));
