import type * as http from "node:http";
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus";
import { MeterProvider } from "@opentelemetry/sdk-metrics";
import { sendJson } from "./http-io.js";
import type { Endpoint } from "./issuer-endpoints.js";

/** The path of the metrics in the Prometheus text format. */
export const metricsPath = "/metrics";

/** DemoMetrics is the demo's meter provider and the endpoint that serves what it measures. */
export interface DemoMetrics {
  /** Give it to `openTelemetry({ meterProvider })`. */
  readonly meterProvider: MeterProvider;
  /** Answers `GET /metrics` in the Prometheus text format. */
  readonly endpoint: Endpoint;
  /** Stops the meter provider. */
  close(): Promise<void>;
}

/**
 * demoMetrics makes a meter provider read by a Prometheus exporter that
 * starts no server of its own: `GET /metrics` is served on the demo's port,
 * next to the RPCs, so a scraper needs no second address.
 */
export function demoMetrics(): DemoMetrics {
  const exporter = new PrometheusExporter({ preventServerStart: true });
  const meterProvider = new MeterProvider({ readers: [exporter] });
  return {
    meterProvider,
    endpoint(req, res, path) {
      if (path !== metricsPath) {
        return false;
      }
      if (req.method !== "GET" && req.method !== "HEAD") {
        sendJson(res, 405, { error: "use GET" }, { allow: "GET, HEAD" });
        return true;
      }
      res.setHeader("x-content-type-options", "nosniff");
      // The handler sets the status and a header and ends the response: what
      // an HTTP/2 compatibility response does as well as an HTTP/1.1 one.
      exporter.getMetricsRequestHandler(
        req as http.IncomingMessage,
        res as unknown as http.ServerResponse,
      );
      return true;
    },
    close: () => meterProvider.shutdown(),
  };
}
