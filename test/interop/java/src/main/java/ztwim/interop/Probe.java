package ztwim.interop;

import io.spiffe.bundle.x509bundle.X509Bundle;
import io.spiffe.provider.SpiffeSslContextFactory;
import io.spiffe.provider.SpiffeSslContextFactory.SslContextOptions;
import io.spiffe.spiffeid.SpiffeId;
import io.spiffe.svid.jwtsvid.JwtSvid;
import io.spiffe.svid.x509svid.X509Svid;
import io.spiffe.svid.x509svid.X509SvidValidator;
import io.spiffe.workloadapi.DefaultJwtSource;
import io.spiffe.workloadapi.DefaultWorkloadApiClient;
import io.spiffe.workloadapi.DefaultX509Source;
import io.spiffe.workloadapi.JwtSource;
import io.spiffe.workloadapi.JwtSourceOptions;
import io.spiffe.workloadapi.WorkloadApiClient;

import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLServerSocket;
import javax.net.ssl.SSLSocket;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/**
 * Drives java-spiffe (the official Java SDK: java-spiffe-core, java-spiffe-provider, grpc-netty-linux)
 * against a Workload API socket and prints one JSON object per check on stdout. Run by
 * test/interop/java-spiffe.test.ts, which judges the results.
 *
 * Arguments: --socket unix:/path --audience AUD [--expect-id spiffe://...] [--wait-for-id spiffe://... --wait-seconds N]
 */
public final class Probe {
    private static final Object OUT = new Object();

    private Probe() {
    }

    public static void main(String[] args) throws Exception {
        Map<String, String> opt = new HashMap<>();
        for (int i = 0; i + 1 < args.length; i += 2) opt.put(args[i].replaceFirst("^--", ""), args[i + 1]);
        String socket = require(opt, "socket");
        String audience = require(opt, "audience");
        String expectId = opt.get("expect-id");
        String waitForId = opt.get("wait-for-id");
        int waitSeconds = Integer.parseInt(opt.getOrDefault("wait-seconds", "30"));

        CountDownLatch seen = new CountDownLatch(1);
        DefaultX509Source x509;
        try {
            x509 = DefaultX509Source.newSource(DefaultX509Source.X509SourceOptions.builder()
                    .spiffeSocketPath(socket)
                    .initTimeout(Duration.ofSeconds(20))
                    .svidPicker(svids -> {
                        List<String> ids = new ArrayList<>();
                        for (X509Svid s : svids) ids.add(s.getSpiffeId().toString());
                        emit(obj("event", "x509-update", "ids", ids));
                        if (waitForId != null && ids.contains(waitForId)) seen.countDown();
                        for (X509Svid s : svids) if (s.getSpiffeId().toString().equals(expectId)) return s;
                        return svids.get(0);
                    })
                    .build());
        } catch (Exception e) {
            emit(obj("check", "x509-source", "ok", false, "error", describe(e)));
            System.exit(1);
            return;
        }
        try {
            checkX509(x509);
            String token = checkJwt(socket, audience);
            checkValidate(socket, token, audience);
            for (String proto : new String[]{"TLSv1.2", "TLSv1.3"}) {
                SpiffeId own = x509.getX509Svid().getSpiffeId();
                checkMtls(x509, proto, "accept", own, Set.of(own));
                checkMtls(x509, proto, "refuse", own,
                        Set.of(SpiffeId.parse("spiffe://" + own.getTrustDomain().getName() + "/someone-else")));
            }
            if (waitForId != null) {
                long started = System.nanoTime();
                emit(obj("event", "watching"));
                boolean ok = seen.await(waitSeconds, TimeUnit.SECONDS);
                emit(obj("check", "x509-update", "ok", ok, "id", waitForId,
                        "elapsed_ms", (System.nanoTime() - started) / 1_000_000));
            }
        } finally {
            x509.close();
        }
        emit(obj("event", "done"));
        System.exit(0);
    }

    private static void checkX509(DefaultX509Source x509) {
        try {
            X509Svid svid = x509.getX509Svid();
            X509Bundle bundle = x509.getBundleForTrustDomain(svid.getSpiffeId().getTrustDomain());
            X509SvidValidator.verifyChain(svid.getChain(), x509);
            emit(obj("check", "x509-source", "ok", true, "spiffe_id", svid.getSpiffeId().toString(),
                    "chain_length", svid.getChain().size(), "bundle_authorities", bundle.getX509Authorities().size(),
                    "chain_verified", true));
        } catch (Exception e) {
            emit(obj("check", "x509-source", "ok", false, "error", describe(e)));
        }
    }

    private static String checkJwt(String socket, String audience) {
        try (JwtSource jwt = DefaultJwtSource.newSource(JwtSourceOptions.builder()
                .spiffeSocketPath(socket).initTimeout(Duration.ofSeconds(20)).build())) {
            JwtSvid svid = jwt.fetchJwtSvid(audience);
            // And verified locally against the source's JWT bundle.
            JwtSvid parsed = JwtSvid.parseAndValidate(svid.getToken(), jwt, Set.of(audience));
            emit(obj("check", "jwt-source", "ok", true, "spiffe_id", svid.getSpiffeId().toString(),
                    "audience", new ArrayList<>(svid.getAudience()), "token", svid.getToken(),
                    "locally_valid", parsed.getSpiffeId().equals(svid.getSpiffeId())));
            return svid.getToken();
        } catch (Exception e) {
            emit(obj("check", "jwt-source", "ok", false, "error", describe(e)));
            return null;
        }
    }

    private static void checkValidate(String socket, String token, String audience) throws Exception {
        if (token == null) return;
        try (WorkloadApiClient client = DefaultWorkloadApiClient.newClient(
                DefaultWorkloadApiClient.ClientOptions.builder().spiffeSocketPath(socket).build())) {
            validate(client, "validate-good", token, audience);
            validate(client, "validate-wrong-audience", token, audience + "-other");
            validate(client, "validate-tampered", tamper(token), audience);
        }
    }

    private static void validate(WorkloadApiClient client, String name, String token, String audience) {
        try {
            JwtSvid svid = client.validateJwtSvid(token, audience);
            emit(obj("check", name, "ok", true, "spiffe_id", svid.getSpiffeId().toString()));
        } catch (Exception e) {
            emit(obj("check", name, "ok", false, "error", describe(e)));
        }
    }

    /** The token with one signature byte changed (decoded, flipped, re-encoded). */
    private static String tamper(String token) {
        int dot = token.lastIndexOf('.');
        byte[] sig = Base64.getUrlDecoder().decode(token.substring(dot + 1));
        sig[sig.length / 2] ^= 0x01;
        return token.substring(0, dot + 1) + Base64.getUrlEncoder().withoutPadding().encodeToString(sig);
    }

    /** A TLS server and client in this process, both from the provider's SSLContext. */
    private static void checkMtls(DefaultX509Source x509, String proto, String mode, SpiffeId own, Set<SpiffeId> clientAccepts) {
        String name = "mtls-" + proto + "-" + mode;
        try {
            Supplier<Set<SpiffeId>> serverAccepts = () -> Set.of(own);
            SSLContext serverCtx = SpiffeSslContextFactory.getSslContext(SslContextOptions.builder()
                    .sslProtocol(proto).x509Source(x509).acceptedSpiffeIdsSupplier(serverAccepts).build());
            SSLContext clientCtx = SpiffeSslContextFactory.getSslContext(SslContextOptions.builder()
                    .sslProtocol(proto).x509Source(x509).acceptedSpiffeIdsSupplier(() -> clientAccepts).build());
            try (SSLServerSocket server = (SSLServerSocket) serverCtx.getServerSocketFactory()
                    .createServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
                server.setEnabledProtocols(new String[]{proto});
                server.setNeedClientAuth(true);
                CompletableFuture<String> served = CompletableFuture.supplyAsync(() -> {
                    try (SSLSocket s = (SSLSocket) server.accept()) {
                        s.setSoTimeout(10_000);
                        InputStream in = s.getInputStream();
                        int b = in.read();
                        OutputStream out = s.getOutputStream();
                        out.write(b + 1);
                        out.flush();
                        return s.getSession().getPeerPrincipal().getName();
                    } catch (Exception e) {
                        return "error: " + describe(e);
                    }
                });
                try (SSLSocket c = (SSLSocket) clientCtx.getSocketFactory()
                        .createSocket(InetAddress.getLoopbackAddress(), server.getLocalPort())) {
                    c.setEnabledProtocols(new String[]{proto});
                    c.setSoTimeout(10_000);
                    c.startHandshake();
                    c.getOutputStream().write(41);
                    c.getOutputStream().flush();
                    int echoed = c.getInputStream().read();
                    String protocol = c.getSession().getProtocol();
                    String serverSaw = served.get(15, TimeUnit.SECONDS);
                    emit(obj("check", name, "ok", echoed == 42, "protocol", protocol, "server_peer", serverSaw));
                } catch (Exception e) {
                    served.cancel(true);
                    emit(obj("check", name, "ok", false, "error", describe(e)));
                }
            }
        } catch (Exception e) {
            emit(obj("check", name, "ok", false, "error", describe(e)));
        }
    }

    private static String require(Map<String, String> opt, String name) {
        String v = opt.get(name);
        if (v == null) throw new IllegalArgumentException("missing --" + name);
        return v;
    }

    private static String describe(Throwable e) {
        StringBuilder sb = new StringBuilder();
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (sb.length() > 0) sb.append(" <- ");
            sb.append(t.getClass().getName()).append(": ").append(t.getMessage());
            if (t.getCause() == t) break;
        }
        return sb.toString();
    }

    private static Map<String, Object> obj(Object... kv) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i + 1 < kv.length; i += 2) m.put((String) kv[i], kv[i + 1]);
        return m;
    }

    private static void emit(Map<String, Object> m) {
        String line = json(m);
        synchronized (OUT) {
            System.out.println(line);
            System.out.flush();
        }
    }

    private static String json(Object v) {
        if (v == null) return "null";
        if (v instanceof Boolean || v instanceof Number) return v.toString();
        if (v instanceof Map<?, ?> m) {
            StringBuilder sb = new StringBuilder("{");
            for (Map.Entry<?, ?> e : m.entrySet()) {
                if (sb.length() > 1) sb.append(',');
                sb.append(json(String.valueOf(e.getKey()))).append(':').append(json(e.getValue()));
            }
            return sb.append('}').toString();
        }
        if (v instanceof List<?> l) {
            StringBuilder sb = new StringBuilder("[");
            for (Object o : l) {
                if (sb.length() > 1) sb.append(',');
                sb.append(json(o));
            }
            return sb.append(']').toString();
        }
        String s = v.toString();
        StringBuilder sb = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') sb.append('\\').append(c);
            else if (c < 0x20) sb.append(String.format("\\u%04x", (int) c));
            else sb.append(c);
        }
        return sb.append('"').toString();
    }
}
