// connect-jwt/otel: OpenTelemetry metrics, spans and span events for
// createJwtAuth, through its `telemetry` option. Needs @opentelemetry/api,
// which the rest of connect-jwt never imports.
export { type OpenTelemetryOptions, openTelemetry } from "./open-telemetry.js";
export type { AuthenticationEvent, KeyFetch, Telemetry } from "../core/telemetry.js";
