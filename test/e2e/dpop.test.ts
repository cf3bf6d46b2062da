import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Code } from "@connectrpc/connect";
import {
  cnfOf,
  dpopHeaders,
  generateDpopKey,
  htuOf,
  makeProof,
  publicOrigin,
} from "../helpers/dpop.js";
import {
  type CallKind,
  call,
  callKinds,
  gateAndInterceptor,
  transports,
  useServer,
} from "../helpers/server.js";
import { audience, generateTestKey, issuer, mint } from "../helpers/tokens.js";

const signer = await generateTestKey("ES256");
const options = {
  jwks: { keys: [signer.publicJwk] },
  algorithms: ["ES256" as const],
  issuer,
  audience,
  dpop: { origins: [publicOrigin] },
};

describe("DPoP: a bound token with a fresh proof", () => {
  const server = useServer(() => gateAndInterceptor(options));
  for (const transport of transports) {
    for (const kind of callKinds(transport)) {
      test(`${transport.name}, ${kind}: admitted`, async () => {
        const key = await generateDpopKey();
        const token = await mint(signer, { claims: { ...cnfOf(key), sub: "bound" } });
        const proof = await makeProof(key, { token, htu: htuOf(kind as CallKind) });
        const outcome = await call(server().client(transport), kind, dpopHeaders(token, proof));
        assert.deepEqual(outcome, { ok: true, subject: "bound" });
      });
      test(`${transport.name}, ${kind}: a replayed proof is refused`, async () => {
        const key = await generateDpopKey();
        const token = await mint(signer, { claims: cnfOf(key) });
        const proof = await makeProof(key, { token, htu: htuOf(kind as CallKind) });
        const client = server().client(transport);
        assert.equal((await call(client, kind, dpopHeaders(token, proof))).ok, true);
        const outcome = await call(client, kind, dpopHeaders(token, proof));
        assert.equal(outcome.ok, false);
        if (!outcome.ok) {
          assert.equal(outcome.error.code, Code.PermissionDenied);
          assert.equal(
            outcome.error.metadata.get("www-authenticate"),
            'DPoP error="invalid_dpop_proof", algs="ES256 EdDSA PS256 RS256"',
          );
        }
      });
    }
  }
});
