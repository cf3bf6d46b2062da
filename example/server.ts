// `npm start`: the demo server. Configuration comes from the environment
// (see config.ts); everything else lives in demo.ts so tests can start it.
import { constants } from "node:os";
import { banner, sampleTokenRequest } from "./banner.js";
import { externalIssuerUnsupported, readConfig, type ServerConfig } from "./config.js";
import { type Demo, startDemo } from "./demo.js";

// Exit code 2 means "wrong configuration", as for a command-line usage error.
let config: ServerConfig;
try {
  config = readConfig(process.env);
} catch (err) {
  console.error(`connect-jwt demo: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(2);
}
if (config.external !== undefined) {
  console.error(externalIssuerUnsupported(config.external));
  process.exit(2);
}

let demo: Demo;
try {
  demo = await startDemo({
    host: config.host,
    port: config.port,
    corsOrigins: config.corsOrigins,
    log: (line) => console.log(line),
  });
} catch (err) {
  // E.g. EADDRINUSE. Only the message: a stack adds nothing for the user.
  console.error(`connect-jwt demo: cannot start: ${err instanceof Error ? err.message : err}`);
  process.exit(1);
}
console.log(banner(demo.url, await demo.mintToken(sampleTokenRequest)));

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
