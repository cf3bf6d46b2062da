// The demo's GET /metrics: connect-jwt's instruments in the Prometheus text
// format, on the demo's own port, after calls on each protocol.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import * as http2 from "node:http2";
import { after, before, describe, it } from "node:test";
import { createClient, type Transport } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import { type Demo, startDemo } from "../../example/demo.js";
import { DemoService } from "../../gen/demo/v1/demo_pb.js";

/** The samples of one metric in a Prometheus text exposition, each with its labels. */
function samples(text: string, name: string) {
  const found: { labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split("\n")) {
    const match = /^([a-z_]+)\{(.*)\} (\S+)$/.exec(line);
    if (match?.[1] === name) {
      const labels = Object.fromEntries(
        [...(match[2] ?? "").matchAll(/([a-z_]+)="([^"]*)"/g)].map((m) => [m[1], m[2]]),
      );
      found.push({ labels, value: Number(match[3]) });
    }
  }
  return found;
}

/** GET over h2c (prior knowledge), as a scraper that speaks HTTP/2 would. */
function getOverHttp2(url: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(url);
    session.on("error", reject);
    const stream = session.request({ ":path": path });
    let status = 0;
    let body = "";
    stream.on("response", (headers) => {
      status = Number(headers[":status"]);
    });
    stream.setEncoding("utf8");
    stream.on("data", (chunk: string) => {
      body += chunk;
    });
    stream.on("end", () => {
      session.close();
      resolve({ status, body });
    });
    stream.on("error", reject);
  });
}

describe("demo server: GET /metrics", () => {
  let demo: Demo;
  before(async () => {
    demo = await startDemo({ host: "127.0.0.1", port: 0 });
  });
  after(() => demo.close());

  it("shows connect_jwt_authentication_duration series for each protocol after a few calls", async () => {
    const token = await demo.mintToken({ sub: "metrics-7d2c", scope: "notes:read" });
    const transports: Record<string, Transport> = {
      connect: createConnectTransport({ baseUrl: demo.url, httpVersion: "1.1" }),
      grpc: createGrpcTransport({ baseUrl: demo.url }),
      grpc_web: createGrpcWebTransport({ baseUrl: demo.url, httpVersion: "1.1" }),
    };
    for (const transport of Object.values(transports)) {
      const client = createClient(DemoService, transport);
      for (let i = 0; i < 3; i++) {
        const res = await client.whoAmI({}, { headers: { authorization: `Bearer ${token}` } });
        assert.equal(res.subject, "metrics-7d2c");
      }
      await assert.rejects(client.whoAmI({}, { headers: { authorization: "Bearer x.y.z" } }));
    }

    const res = await fetch(`${demo.url}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/plain/);
    assert.equal(res.headers.get("x-content-type-options"), "nosniff");
    const text = await res.text();
    assert.match(text, /^# TYPE connect_jwt_authentication_duration histogram$/m);
    const counts = samples(text, "connect_jwt_authentication_duration_count");
    for (const protocol of Object.keys(transports)) {
      const of = (outcome: string) =>
        counts.find(
          (s) =>
            s.labels.connect_jwt_protocol === protocol &&
            s.labels.connect_jwt_outcome === outcome &&
            s.labels.rpc_service === "demo.v1.DemoService" &&
            s.labels.rpc_method === "WhoAmI",
        );
      assert.equal(of("admitted")?.value, 3, `${protocol} admitted`);
      const refused = of("refused");
      assert.equal(refused?.value, 1, `${protocol} refused`);
      assert.equal(refused?.labels.error_type, "ERR_TOKEN_MALFORMED");
    }
    assert.ok(samples(text, "connect_jwt_authentication_duration_bucket").length > 0);
    const lookups = samples(text, "connect_jwt_token_cache_lookups_total");
    assert.deepEqual(lookups.map((s) => s.labels.connect_jwt_cache_result).sort(), ["hit", "miss"]);
    // The token and the subject stay out.
    assert.ok(!text.includes(token.split(".")[1] ?? "?"));
    assert.ok(!text.includes("metrics-7d2c"));

    // The README's sample lines have the names and labels of the real thing.
    const readme = await readFile(new URL("../../README.md", import.meta.url), "utf8");
    const shown = [...readme.matchAll(/^(connect_jwt_[a-z_]+)\{(.*)\} \S+$/gm)];
    assert.ok(shown.length >= 3, "the README shows lines of /metrics");
    for (const [line, name = "", labels = ""] of shown) {
      const keys = (labels.match(/[a-z_]+(?==)/g) ?? []).sort();
      const real = samples(text, name).map((s) => Object.keys(s.labels).sort());
      assert.ok(
        real.some((k) => k.join() === keys.join()),
        `README: ${line}\nnot among the /metrics series of that name`,
      );
    }
  });

  it("answers over HTTP/2 too, and only GET and HEAD", async () => {
    const h2 = await getOverHttp2(demo.url, "/metrics");
    assert.equal(h2.status, 200);
    assert.match(h2.body, /connect_jwt_authentication_duration/);
    const post = await fetch(`${demo.url}/metrics`, { method: "POST" });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get("allow"), "GET, HEAD");
  });
});
