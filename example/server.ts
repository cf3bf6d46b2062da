// `npm start`: the demo server. Configuration comes from the environment
// (see config.ts); everything else lives in demo.ts so tests can start it.
import { constants } from "node:os";
import { banner, externalBanner, sampleTokenRequest } from "./banner.js";
import { readConfig, type ServerConfig } from "./config.js";
import { type Demo, startDemo } from "./demo.js";

// Exit code 2 means "wrong configuration", as for a command-line usage error.
let config: ServerConfig;
try {
  config = readConfig(process.env);
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
    log: (line) => console.log(line),
    ...(config.external === undefined ? {} : { external: config.external }),
  });
} catch (err) {
  // E.g. EADDRINUSE, or (a TypeError) an issuer URL connect-jwt refuses, such
  // as plain http to a host that is not loopback. Only the message: a stack
  // adds nothing for the user.
  console.error(`connect-jwt demo: cannot start: ${err instanceof Error ? err.message : err}`);
  process.exit(err instanceof TypeError ? 2 : 1);
}
if (config.external === undefined) {
  console.log(banner(demo.url, await demo.mintToken(sampleTokenRequest)));
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
  console.log(externalBanner(demo.url, config.external));
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
