// `npm start`: the demo server. Configuration comes from the environment and
// the command line (see config.ts); everything else lives in demo.ts so tests
// can start it.
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { constants } from "node:os";
import { createSecureContext } from "node:tls";
import { type BannerTls, banner, externalBanner, sampleTokenRequest } from "./banner.js";
import {
  readArgs,
  readConfig,
  type ServerArgs,
  type ServerConfig,
  type TlsSource,
  usage,
} from "./config.js";
import { type Demo, startDemo } from "./demo.js";
import { localhostNames, selfSignedCertificate, type TlsCredentials } from "./x509.js";

// Exit code 2 means "wrong configuration", as for a command-line usage error.
let config: ServerConfig;
let args: ServerArgs;
let tls: { credentials: TlsCredentials; banner: BannerTls } | undefined;
try {
  args = readArgs(process.argv.slice(2));
  if (args.help) {
    console.log(usage);
    process.exit(0);
  }
  config = readConfig(process.env);
  tls = args.tls === undefined ? undefined : loadTls(args.tls, config.host);
} catch (err) {
  console.error(`connect-jwt demo: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(2);
}

let demo: Demo;
try {
  demo = await startDemo({
    host: config.host,
    port: config.port,
    corsOrigins: config.corsOrigins,
    ...(config.publicOrigins === undefined ? {} : { publicOrigins: config.publicOrigins }),
    log: (line) => console.log(line),
    ...(config.external === undefined ? {} : { external: config.external }),
    ...(tls === undefined ? {} : { tls: tls.credentials }),
    ...(config.redisUrl === undefined ? {} : { redisUrl: config.redisUrl }),
  });
} catch (err) {
  // E.g. EADDRINUSE, or (a TypeError) an issuer URL connect-jwt refuses, such
  // as plain http to a host that is not loopback. Only the message: a stack
  // adds nothing for the user.
  console.error(`connect-jwt demo: cannot start: ${err instanceof Error ? err.message : err}`);
  process.exit(err instanceof TypeError ? 2 : 1);
}
if (config.external === undefined) {
  const token = await demo.mintToken(sampleTokenRequest);
  console.log(banner(demo.url, token, tls?.banner, demo.revocations));
} else {
  // Load the issuer's keys now, so that a wrong URL shows at once; but an
  // issuer that is down only delays authentication: the server stays up and
  // calls with a token get Unavailable until the keys can be had.
  await demo.warmUp().catch((err: unknown) => {
    const reason = err instanceof Error && "code" in err ? ` (${String(err.code)})` : "";
    console.error(
      `connect-jwt demo: warning: cannot load the issuer's keys yet${reason}; calls with a token get Unavailable until they load (retried on use)`,
    );
  });
  console.log(externalBanner(demo.url, config.external, tls?.banner));
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    console.log(`${signal}: shutting down`);
    // A second signal does not wait for the drain (exit code as a shell reports it).
    process.once(signal, () => process.exit(128 + constants.signals[signal]));
    demo.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
}

/**
 * loadTls makes a self-signed certificate for localhost (and `host`, when it
 * names one), or reads `--cert` and `--key`, and checks that they fit.
 */
function loadTls(source: TlsSource, host: string): NonNullable<typeof tls> {
  let credentials: TlsCredentials;
  if ("selfSigned" in source) {
    const wildcard = host === "0.0.0.0" || host === "::";
    const names = new Set<string>([...localhostNames, ...(wildcard ? [] : [host])]);
    credentials = selfSignedCertificate([...names]);
  } else {
    const read = (flag: string, file: string) => {
      try {
        return readFileSync(file, "utf8");
      } catch (err) {
        const code = err instanceof Error && "code" in err ? ` (${String(err.code)})` : "";
        throw new TypeError(`${flag}: cannot read ${file}${code}`);
      }
    };
    credentials = { cert: read("--cert", source.certFile), key: read("--key", source.keyFile) };
    try {
      // Fails for a file that is no PEM, or a key that is not the certificate's.
      createSecureContext(credentials);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      throw new TypeError(`--cert and --key do not make a usable pair: ${reason}`);
    }
  }
  const { fingerprint256 } = new X509Certificate(credentials.cert);
  return {
    credentials,
    banner: { selfSigned: "selfSigned" in source, fingerprint: fingerprint256 },
  };
}
