import {
  type Attributes,
  type MeterProvider,
  metrics,
  SpanStatusCode,
  type TracerProvider,
  trace,
} from "@opentelemetry/api";
import { assertKnownOptions, inOptionsOf, namesOf, type OptionNames } from "../core/options.js";
import type { AuthenticationEvent, Telemetry } from "../core/telemetry.js";

/**
 * OpenTelemetryOptions configure {@link openTelemetry}.
 *
 * @example
 * ```ts
 * const meterProvider = new MeterProvider({ readers: [new PrometheusExporter()] });
 * const telemetry = openTelemetry({ meterProvider, recordSubject: false });
 * ```
 */
export interface OpenTelemetryOptions {
  /**
   * Where the metrics go. Default: the global meter provider, as registered
   * when `openTelemetry()` is called (so start the SDK first).
   */
  meterProvider?: MeterProvider;
  /** Where the key fetch spans go. Default: the global tracer provider. */
  tracerProvider?: TracerProvider;
  /**
   * Record the token's `sub` as `user.id`: on the active span of an admitted
   * call, and on the `connect_jwt.refused` event of a valid token that the
   * method's rule refused. Never on metrics. Default false: a subject is
   * personal data.
   */
  recordSubject?: boolean;
}

const optionNames: OptionNames<OpenTelemetryOptions> = {
  meterProvider: true,
  tracerProvider: true,
  recordSubject: true,
};

/** The instrumentation scope of the meter and the tracer. */
const scope = "connect-jwt";

// A cache hit takes microseconds, a signature check tens of them, a first
// call that waits for keys up to the fetch timeout (5 s by default).
const decisionBuckets = [
  0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
  0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
];
// As OpenTelemetry's HTTP client durations.
const fetchBuckets = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

const cacheHit: Attributes = { "connect_jwt.cache.result": "hit" };
const cacheMiss: Attributes = { "connect_jwt.cache.result": "miss" };

/**
 * openTelemetry reports what connect-jwt does as OpenTelemetry metrics, spans
 * and span events; pass what it returns as `createJwtAuth({ telemetry })`.
 * Every attribute takes a bounded set of values (a flood of distinct bad
 * tokens adds no series), and none holds a token, a header or a claim value
 * (`user.id` only with `recordSubject`).
 *
 * | instrument | kind, unit | attributes |
 * |---|---|---|
 * | `connect_jwt.authentication.duration` | histogram, `s` | `connect_jwt.outcome`, `error.type` (when not admitted), `rpc.service`, `rpc.method`, `connect_jwt.protocol` |
 * | `connect_jwt.token_cache.lookups` | counter | `connect_jwt.cache.result` |
 * | `connect_jwt.keys.fetches` | counter | `connect_jwt.keys.result`, `server.address` |
 * | `connect_jwt.keys.fetch.duration` | histogram, `s` | `connect_jwt.keys.result`, `server.address` |
 *
 * Each fetch of a JWKS or discovery document is a span
 * `connect_jwt.keys.fetch`, and each refusal an event `connect_jwt.refused`
 * (with `error.type`) on the span active at the time: the RPC's, when the
 * application traces its requests.
 *
 * @example
 * ```ts
 * import { openTelemetry } from "connect-jwt/otel";
 *
 * const auth = createJwtAuth({
 *   jwksUrl: "https://auth.example.com/.well-known/jwks.json",
 *   audience: "notes-api",
 *   telemetry: openTelemetry(), // the global providers, or { meterProvider, tracerProvider }
 * });
 * ```
 */
export function openTelemetry(options: OpenTelemetryOptions = {}): Telemetry {
  return inOptionsOf("openTelemetry", () => compileTelemetry(options));
}

function compileTelemetry(options: OpenTelemetryOptions): Telemetry {
  if (typeof options !== "object" || options === null) {
    throw new TypeError("pass an options object, e.g. { meterProvider }, or nothing");
  }
  assertKnownOptions(options, namesOf(optionNames));
  const { meterProvider, tracerProvider, recordSubject = false } = options;
  if (meterProvider !== undefined && typeof meterProvider?.getMeter !== "function") {
    throw new TypeError("meterProvider must be a MeterProvider, e.g. the SDK's");
  }
  if (tracerProvider !== undefined && typeof tracerProvider?.getTracer !== "function") {
    throw new TypeError("tracerProvider must be a TracerProvider, e.g. the SDK's");
  }
  if (typeof recordSubject !== "boolean") {
    throw new TypeError("recordSubject must be true or false");
  }
  const meter = (meterProvider ?? metrics.getMeterProvider()).getMeter(scope);
  const tracer = (tracerProvider ?? trace.getTracerProvider()).getTracer(scope);
  const decisions = meter.createHistogram("connect_jwt.authentication.duration", {
    description: "The time connect-jwt took to admit or refuse a call.",
    unit: "s",
    advice: { explicitBucketBoundaries: decisionBuckets },
  });
  const lookups = meter.createCounter("connect_jwt.token_cache.lookups", {
    description: "Lookups of tokens in the token cache, and whether it answered.",
  });
  const fetches = meter.createCounter("connect_jwt.keys.fetches", {
    description: "Fetches of a JWKS or an OpenID Connect discovery document.",
  });
  const fetchDurations = meter.createHistogram("connect_jwt.keys.fetch.duration", {
    description: "The time a fetch of a JWKS or of a discovery document took.",
    unit: "s",
    advice: { explicitBucketBoundaries: fetchBuckets },
  });

  return {
    authenticated(event) {
      decisions.record(event.seconds, decisionAttributes(event));
      const subject = recordSubject ? event.subject : undefined;
      if (event.outcome !== "admitted") {
        const attributes: Attributes = { "error.type": event.reason };
        if (subject !== undefined) {
          attributes["user.id"] = subject;
        }
        trace.getActiveSpan()?.addEvent("connect_jwt.refused", attributes);
      } else if (subject !== undefined) {
        trace.getActiveSpan()?.setAttribute("user.id", subject);
      }
    },
    cacheLookup(hit) {
      lookups.add(1, hit ? cacheHit : cacheMiss);
    },
    keyFetch(url) {
      const started = performance.now();
      const address = url.hostname;
      // The origin and path only: a query or credentials in the URL stay out.
      const span = tracer.startSpan("connect_jwt.keys.fetch", {
        attributes: { "url.full": url.origin + url.pathname, "server.address": address },
      });
      return {
        end(error) {
          const attributes: Attributes = {
            "connect_jwt.keys.result": error === undefined ? "success" : "failure",
            "server.address": address,
          };
          fetches.add(1, attributes);
          fetchDurations.record((performance.now() - started) / 1000, attributes);
          if (error !== undefined) {
            // A KeySetError names the URL and what failed, never a token.
            span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
          }
          span.end();
        },
      };
    },
  };
}

function decisionAttributes(event: AuthenticationEvent): Attributes {
  const attributes: Attributes = {
    "connect_jwt.outcome": event.outcome,
    "rpc.service": event.service,
    "rpc.method": event.method,
    "connect_jwt.protocol": event.protocol === "grpc-web" ? "grpc_web" : event.protocol,
  };
  if (event.reason !== undefined) {
    attributes["error.type"] = event.reason;
  }
  return attributes;
}
