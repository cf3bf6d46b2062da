// A real OpenID provider (panva's oidc-provider) in this process, on 127.0.0.1,
// issuing JWT access tokens (RFC 9068) through the client-credentials grant
// with resource indicators (RFC 8707), so that connect-jwt is tested against
// the documents and tokens of an issuer it did not write itself.
import { randomBytes, randomUUID } from "node:crypto";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { type CryptoKey, exportJWK, generateKeyPair, type JWK } from "jose";
import Provider, {
  type Adapter,
  type AdapterPayload,
  type Configuration,
  errors,
} from "oidc-provider";

/** The resource (RFC 8707) whose tokens the servers under test accept. */
export const notesResource = "https://notes.example/";
/** Another resource: its tokens carry another audience. */
export const otherResource = "https://other.example/";
/** The scopes the resources grant: enough for every method of DemoService's proto rules. */
export const notesScopes = "notes:read notes:write chat";

/** One signing key of the provider: its private key, to forge tokens in tests. */
export interface ProviderKey {
  readonly kid: string;
  readonly privateKey: CryptoKey;
}

/** Options for {@link startOidcProvider}. */
export interface OidcProviderOptions {
  /**
   * The resources the provider issues tokens for, each with the `aud` of its
   * tokens. Default: {@link notesResource} and {@link otherResource}, each its own audience.
   */
  resources?: Readonly<Record<string, string>>;
}

/** A running provider. */
export interface TestOidcProvider {
  /** The issuer: `http://127.0.0.1:<port>`, no trailing slash, the `iss` of its tokens. */
  readonly issuer: string;
  /** The JWKS URL its discovery document names. */
  readonly jwksUri: string;
  /** The one client, which is also the `sub` of its client-credentials tokens. */
  readonly clientId: string;
  /** The signing keys as published, newest first; the first one signs. */
  readonly keys: readonly ProviderKey[];
  /** How many requests reached each path, e.g. `requests("/jwks")`. */
  requests(path: string): number;
  /**
   * token runs a client-credentials grant at the token endpoint and returns
   * the access token. Default resource {@link notesResource}, scope {@link notesScopes}.
   */
  token(options?: { resource?: string; scope?: string }): Promise<string>;
  /**
   * rotate replaces the provider with a new instance on the same port (same
   * issuer) whose JWKS has a new signing key in front of the old ones.
   */
  rotate(): Promise<ProviderKey>;
  close(): Promise<void>;
}

const jwksPath = "/jwks";

/**
 * startOidcProvider listens on 127.0.0.1, port 0, first (the issuer is its own
 * URL), then installs the provider's handler.
 */
export async function startOidcProvider(
  options: OidcProviderOptions = {},
): Promise<TestOidcProvider> {
  const resources = options.resources ?? {
    [notesResource]: notesResource,
    [otherResource]: otherResource,
  };
  const counts = new Map<string, number>();
  let handler: http.RequestListener = (_req, res) => {
    res.writeHead(503).end();
  };
  const server = http.createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    counts.set(path, (counts.get(path) ?? 0) + 1);
    handler(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const client = { id: `notes-client-${randomUUID()}`, secret: randomBytes(32).toString("hex") };
  const keys: { key: ProviderKey; jwk: JWK }[] = [];
  const store = new Map<string, AdapterPayload>();

  async function install() {
    const key = await newKey(keys.length + 1);
    keys.unshift(key);
    const provider = new Provider(issuer, configuration(client, resources, keys, store));
    handler = provider.callback();
    return key.key;
  }
  await install();

  return {
    issuer,
    jwksUri: `${issuer}${jwksPath}`,
    clientId: client.id,
    get keys() {
      return keys.map((k) => k.key);
    },
    requests: (path) => counts.get(path) ?? 0,
    async token({ resource = notesResource, scope = notesScopes } = {}) {
      const res = await fetch(`${issuer}/token`, {
        method: "POST",
        headers: {
          authorization: `Basic ${Buffer.from(`${client.id}:${client.secret}`).toString("base64")}`,
        },
        body: new URLSearchParams({ grant_type: "client_credentials", resource, scope }),
      });
      const body = (await res.json()) as Record<string, unknown>;
      if (res.status !== 200 || typeof body.access_token !== "string") {
        throw new Error(`token endpoint: HTTP ${res.status} ${String(body.error)}`);
      }
      return body.access_token;
    },
    rotate: install,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function newKey(n: number) {
  const { privateKey } = await generateKeyPair("ES256", { extractable: true });
  const kid = `op-key-${n}-${randomUUID().slice(0, 8)}`;
  const jwk = { ...(await exportJWK(privateKey)), kid, alg: "ES256", use: "sig" };
  return { key: { kid, privateKey }, jwk };
}

function configuration(
  client: { id: string; secret: string },
  resources: Readonly<Record<string, string>>,
  keys: readonly { jwk: JWK }[],
  store: Map<string, AdapterPayload>,
): Configuration {
  return {
    // Our own store, so that the provider does not warn about its development one.
    adapter: (name) => memoryAdapter(name, store),
    clients: [
      {
        client_id: client.id,
        client_secret: client.secret,
        grant_types: ["client_credentials"],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: "client_secret_basic",
      },
    ],
    // The default (RS256) would need an RSA key; this provider has only ES256 ones.
    clientDefaults: { id_token_signed_response_alg: "ES256" },
    jwks: { keys: keys.map((k) => k.jwk) },
    ttl: { ClientCredentials: 300 },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => notesResource,
        useGrantedResource: async () => false,
        async getResourceServerInfo(_ctx, resource) {
          const audience = resources[resource];
          if (audience === undefined) {
            throw new errors.InvalidTarget();
          }
          return {
            scope: notesScopes,
            audience,
            accessTokenFormat: "jwt",
            jwt: { sign: { alg: "ES256" } },
          };
        },
      },
    },
  };
}

function memoryAdapter(name: string, store: Map<string, AdapterPayload>): Adapter {
  const key = (id: string) => `${name}:${id}`;
  return {
    async upsert(id, payload) {
      store.set(key(id), payload);
    },
    find: async (id) => store.get(key(id)),
    findByUserCode: async () => undefined,
    findByUid: async () => undefined,
    async consume(id) {
      const payload = store.get(key(id));
      if (payload !== undefined) {
        payload.consumed = Math.floor(Date.now() / 1000);
      }
    },
    async destroy(id) {
      store.delete(key(id));
    },
    async revokeByGrantId() {},
  };
}
