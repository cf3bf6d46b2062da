// The demo in TLS mode (`npm start -- --tls`), started in-process: one HTTPS
// port where ALPN picks HTTP/2 or HTTP/1.1, all three protocols on it.
import assert from "node:assert/strict";
import { createPrivateKey, X509Certificate } from "node:crypto";
import * as http2 from "node:http2";
import * as https from "node:https";
import { after, before, describe, it } from "node:test";
import * as tls from "node:tls";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import { readArgs } from "../../example/config.js";
import { type Demo, startDemo } from "../../example/demo.js";
import { alpnProtocols } from "../../example/listen-tls.js";
import { localhostNames, selfSignedCertificate, type TlsCredentials } from "../../example/x509.js";
import { DemoService } from "../../gen/demo/v1/demo_pb.js";
import { bearerAuth } from "../../src/client/index.js";

describe("selfSignedCertificate", () => {
  it("is a server certificate for localhost, 127.0.0.1 and ::1, signed by its own key", () => {
    const { cert, key } = selfSignedCertificate();
    const x509 = new X509Certificate(cert);
    assert.equal(x509.subject, "CN=localhost");
    assert.equal(x509.issuer, "CN=localhost");
    assert.equal(
      x509.subjectAltName,
      "DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1",
    );
    assert.equal(x509.checkHost("localhost"), "localhost");
    assert.equal(x509.checkIP("127.0.0.1"), "127.0.0.1");
    assert.equal(x509.checkIP("::1"), "::1");
    assert.equal(x509.checkHost("example.com"), undefined);
    assert.equal(x509.ca, false);
    assert.deepEqual(x509.keyUsage, ["1.3.6.1.5.5.7.3.1"]); // serverAuth
    assert.ok(x509.verify(x509.publicKey), "self-signed");
    assert.ok(x509.checkPrivateKey(createPrivateKey(key)));
    const now = Date.now();
    assert.ok(Date.parse(x509.validFrom) < now && now < Date.parse(x509.validTo));
    // A fresh key and serial number every time.
    assert.notEqual(
      new X509Certificate(selfSignedCertificate().cert).serialNumber,
      x509.serialNumber,
    );
  });

  it("takes other names; a name that is neither DNS nor IP is a TypeError", () => {
    const x509 = new X509Certificate(
      selfSignedCertificate(["demo.test", "10.0.0.1", "fe80::1"]).cert,
    );
    assert.equal(
      x509.subjectAltName,
      "DNS:demo.test, IP Address:10.0.0.1, IP Address:FE80:0:0:0:0:0:0:1",
    );
    assert.throws(() => selfSignedCertificate(["no spaces please"]), TypeError);
  });
});

describe("readArgs: the flags of npm start", () => {
  it("no flags: cleartext; --tls: self-signed; --cert and --key: files", () => {
    assert.deepEqual(readArgs([]), { tls: undefined, help: false });
    assert.deepEqual(readArgs(["--tls"]), { tls: { selfSigned: true }, help: false });
    const files = { tls: { certFile: "c.pem", keyFile: "k.pem" }, help: false };
    assert.deepEqual(readArgs(["--cert", "c.pem", "--key", "k.pem"]), files);
    assert.deepEqual(readArgs(["--tls", "--cert=c.pem", "--key=k.pem"]), files);
    assert.equal(readArgs(["-h"]).help, true);
  });

  const mistakes: [string[], RegExp][] = [
    [["--cert", "c.pem"], /^--cert needs --key/],
    [["--key", "k.pem"], /^--key needs --cert/],
    [["--tsl"], /Unknown option '--tsl'.*usage: npm start/s],
    [["--cert"], /--cert/],
    [["serve"], /serve/],
  ];
  for (const [argv, message] of mistakes) {
    it(`${argv.join(" ")}: a TypeError that says how to fix it`, () => {
      assert.throws(
        () => readArgs(argv),
        (err: unknown) => {
          assert.ok(err instanceof TypeError);
          assert.match(err.message, message);
          return true;
        },
      );
    });
  }
});

describe("demo server over TLS", () => {
  let credentials: TlsCredentials;
  let demo: Demo;
  before(async () => {
    credentials = selfSignedCertificate();
    demo = await startDemo({ tls: credentials });
  });
  after(() => demo.close());

  it("serves https on 127.0.0.1, and its issuer is that https origin", async () => {
    assert.match(demo.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(demo.issuer?.issuer, demo.url);
  });

  // Trust the certificate (not rejectUnauthorized: false), so the check is real.
  const transports: Record<string, (baseUrl: string, token?: string) => Transport> = {
    "connect over HTTP/2": (baseUrl, token) =>
      createConnectTransport({
        baseUrl,
        httpVersion: "2",
        nodeOptions: { ca: credentials.cert },
        interceptors: token === undefined ? [] : [bearerAuth(token)],
      }),
    "grpc over HTTP/2": (baseUrl, token) =>
      createGrpcTransport({
        baseUrl,
        nodeOptions: { ca: credentials.cert },
        interceptors: token === undefined ? [] : [bearerAuth(token)],
      }),
    "grpc-web over HTTP/1.1": (baseUrl, token) =>
      createGrpcWebTransport({
        baseUrl,
        httpVersion: "1.1",
        nodeOptions: { ca: credentials.cert },
        interceptors: token === undefined ? [] : [bearerAuth(token)],
      }),
  };
  for (const [name, transport] of Object.entries(transports)) {
    it(`${name}: WhoAmI and ListNotes with a token, refused without`, async () => {
      const token = await demo.mintToken({ sub: "tls-user", scope: "notes:read" });
      const client = createClient(DemoService, transport(demo.url, token));
      const reply = await client.whoAmI({});
      assert.equal(reply.subject, "tls-user");
      assert.equal(reply.issuer, demo.url);
      const owners = [];
      for await (const res of client.listNotes({ limit: 2 })) {
        owners.push(res.note?.owner);
      }
      assert.deepEqual(owners, ["tls-user", "tls-user"]);
      const anonymous = createClient(DemoService, transport(demo.url));
      await assert.rejects(anonymous.whoAmI({}), (err) => {
        const error = ConnectError.from(err);
        assert.equal(error.code, Code.PermissionDenied);
        // The demo accepts DPoP beside Bearer: both schemes are offered.
        assert.equal(
          error.metadata.get("www-authenticate"),
          'Bearer, DPoP algs="ES256 EdDSA PS256 RS256"',
        );
        return true;
      });
    });
  }

  it("grpc over HTTP/2: client and bidi streams carry the subject", async () => {
    const token = await demo.mintToken({ sub: "streamer", scope: "notes:write chat" });
    const client = createClient(
      DemoService,
      transports["grpc over HTTP/2"]?.(demo.url, token) as Transport,
    );
    async function* texts() {
      yield { text: "one" };
      yield { text: "two" };
    }
    const upload = await client.uploadNotes(texts());
    assert.deepEqual([upload.count, upload.owner], [2, "streamer"]);
    const echoes = [];
    for await (const res of client.chat(texts())) {
      echoes.push(`${res.subject}: ${res.text}`);
    }
    assert.deepEqual(echoes, ["streamer: one", "streamer: two"]);
  });

  it("a client that does not trust the certificate cannot call", async () => {
    const client = createClient(DemoService, createGrpcTransport({ baseUrl: demo.url }));
    await assert.rejects(client.ping({}), (err) => {
      assert.match(ConnectError.from(err).message, /self-signed certificate/);
      return true;
    });
  });

  it("ALPN: h2 for an HTTP/2 client", async () => {
    const session = http2.connect(demo.url, { ca: credentials.cert });
    try {
      await new Promise<void>((resolve, reject) => {
        session.once("connect", () => resolve());
        session.once("error", reject);
      });
      assert.equal(session.alpnProtocol, "h2");
      const stream = session.request({ ":path": "/about" });
      const [status, body] = await new Promise<[number, string]>((resolve, reject) => {
        let text = "";
        let code = 0;
        stream.on("response", (headers) => {
          code = Number(headers[":status"]);
        });
        stream.setEncoding("utf8");
        stream.on("data", (chunk: string) => {
          text += chunk;
        });
        stream.on("end", () => resolve([code, text]));
        stream.on("error", reject);
      });
      assert.equal(status, 200);
      assert.match(body, /one HTTPS port/);
    } finally {
      session.close();
    }
  });

  for (const offered of [["http/1.1"], undefined]) {
    const label = offered === undefined ? "no ALPN" : `ALPN ${offered.join(", ")}`;
    it(`${label}: HTTP/1.1 for an HTTP/1.1-only client`, async () => {
      const { alpn, httpVersion, status, type } = await new Promise<{
        alpn: string | false | null;
        httpVersion: string;
        status: number | undefined;
        type: string | undefined;
      }>((resolve, reject) => {
        const req = https.request(
          `${demo.url}/`,
          {
            ca: credentials.cert,
            agent: false,
            ...(offered === undefined ? {} : { ALPNProtocols: offered }),
          },
          (res) => {
            res.resume();
            res.on("end", () =>
              resolve({
                alpn: (res.socket as tls.TLSSocket).alpnProtocol,
                httpVersion: res.httpVersion,
                status: res.statusCode,
                type: res.headers["content-type"],
              }),
            );
          },
        );
        req.on("error", reject);
        req.end();
      });
      assert.equal(alpn, offered === undefined ? false : "http/1.1");
      assert.equal(httpVersion, "1.1");
      assert.equal(status, 200);
      assert.match(type ?? "", /^text\/html/);
    });
  }

  it("ALPN: the server's preference, h2, when the client offers both", async () => {
    assert.deepEqual(alpnProtocols, ["h2", "http/1.1"]);
    const socket = tls.connect({
      host: "127.0.0.1",
      port: demo.port,
      ca: credentials.cert,
      ALPNProtocols: ["http/1.1", "h2"],
    });
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once("secureConnect", () => resolve());
        socket.once("error", reject);
      });
      assert.equal(socket.authorized, true);
      assert.equal(socket.alpnProtocol, "h2");
    } finally {
      socket.destroy();
    }
  });

  it("the certificate is valid for every local name", async () => {
    for (const host of localhostNames) {
      const socket = tls.connect({
        host: "127.0.0.1",
        port: demo.port,
        ca: credentials.cert,
        ...(host === "localhost" ? { servername: host } : {}),
        checkServerIdentity: (_name, cert) => tls.checkServerIdentity(host, cert),
      });
      try {
        await new Promise<void>((resolve, reject) => {
          socket.once("secureConnect", () => resolve());
          socket.once("error", reject);
        });
        assert.equal(socket.authorized, true, host);
      } finally {
        socket.destroy();
      }
    }
  });
});
