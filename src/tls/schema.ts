/** TLS settings of listeners (serving) and of upstream services (calling). */
import * as v from "valibot";

const d = v.description;
const File = v.pipe(v.string(), v.minLength(1));

export const ServerTlsSchema = v.strictObject({
  cert: v.pipe(File, d("PEM certificate chain file; reloaded when it changes")),
  key: v.pipe(File, d("PEM private key file; reloaded when it changes")),
  ca: v.optional(v.pipe(File, d("PEM CA bundle that client certificates must chain to"))),
  requireClientCert: v.optional(
    v.pipe(v.boolean(), d("mutual TLS: refuse clients without a certificate signed by `ca`")),
    false,
  ),
});

export const ListenTlsSchema = v.strictObject({
  consumer: v.optional(v.pipe(ServerTlsSchema, d("TLS on the consumer listener (the app's proxy)"))),
  provider: v.optional(v.pipe(ServerTlsSchema, d("TLS on the provider listener (from other sidecars)"))),
  admin: v.optional(v.pipe(ServerTlsSchema, d("TLS on the admin listener"))),
  edge: v.optional(v.pipe(ServerTlsSchema, d("TLS on the edge listener (gateway mode)"))),
  grpc: v.optional(v.pipe(ServerTlsSchema, d("TLS on the gRPC consumer listener (listen.grpc; HTTP/2 over TLS, ALPN h2)"))),
  grpcProvider: v.optional(
    v.pipe(ServerTlsSchema, d("TLS on the gRPC provider listener (listen.grpcProvider); callers set services.X.tls")),
  ),
});

export const UpstreamTlsSchema = v.strictObject({
  ca: v.optional(v.pipe(File, d("PEM CA bundle the upstream's certificate must chain to (default: system CAs)"))),
  serverName: v.optional(v.pipe(v.string(), d("name to send in SNI and verify the certificate against"))),
  cert: v.optional(v.pipe(File, d("client certificate file, for upstreams that require one"))),
  key: v.optional(v.pipe(File, d("client private key file"))),
  insecure: v.optional(v.pipe(v.boolean(), d("skip certificate verification (tests only)")), false),
});

export type ServerTls = v.InferOutput<typeof ServerTlsSchema>;
export type UpstreamTls = v.InferOutput<typeof UpstreamTlsSchema>;
