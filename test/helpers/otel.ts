import { type Attributes, context, type Span, type Tracer } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import {
  type DataPoint,
  DataPointType,
  type Histogram,
  MeterProvider,
  type MetricData,
  MetricReader,
  type ResourceMetrics,
} from "@opentelemetry/sdk-metrics";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import type { DualHandler } from "./server.js";

/** A metric reader that collects only when asked: the SDK's in-memory reading, without a timer. */
class CollectingReader extends MetricReader {
  protected override async onShutdown(): Promise<void> {}
  protected override async onForceFlush(): Promise<void> {}
}

// The active span follows the async work of a request, as in an
// application that runs the OpenTelemetry SDK for Node.js.
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());

/** What a test sees of one set of OpenTelemetry providers. */
export interface TestOpenTelemetry {
  readonly meterProvider: MeterProvider;
  readonly tracerProvider: BasicTracerProvider;
  /** Everything the meter provider would export now. */
  collect(): Promise<ResourceMetrics>;
  /** One metric by name; throws when there is none. */
  metric(name: string): Promise<MetricData>;
  /** The spans ended so far, once every request's `rpc` span has ended. */
  spans(): Promise<ReadableSpan[]>;
  /**
   * Wraps a server's handler so that each request runs in an active span
   * named `rpc`, as an HTTP server instrumentation does.
   */
  instrument(handler: DualHandler): DualHandler;
}

/** createTestOpenTelemetry makes a meter provider with an in-memory reader and a tracer provider with an in-memory span exporter. */
export function createTestOpenTelemetry(): TestOpenTelemetry {
  const reader = new CollectingReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  const exporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  const tracer: Tracer = tracerProvider.getTracer("test-server");
  // The requests whose span has not ended yet: a client may have its answer
  // a moment before the server's side of the exchange closes.
  const open = new Set<Promise<void>>();
  async function collect() {
    const { resourceMetrics, errors } = await reader.collect();
    if (errors.length > 0) {
      throw new AggregateError(errors, "collecting metrics failed");
    }
    return resourceMetrics;
  }
  return {
    meterProvider,
    tracerProvider,
    collect,
    async metric(name) {
      const all = (await collect()).scopeMetrics.flatMap((s) => s.metrics);
      const found = all.find((m) => m.descriptor.name === name);
      if (found === undefined) {
        const names = all.map((m) => m.descriptor.name).join(", ");
        throw new Error(`no metric ${name}; there are: ${names || "none"}`);
      }
      return found;
    },
    async spans() {
      await Promise.all(open);
      return exporter.getFinishedSpans();
    },
    instrument: (handler) => (req, res) => {
      tracer.startActiveSpan("rpc", (span: Span) => {
        const ended = new Promise<void>((resolve) => {
          res.once("close", () => {
            span.end();
            open.delete(ended);
            resolve();
          });
        });
        open.add(ended);
        handler(req, res);
      });
    },
  };
}

/** A data point as tests compare it: its attributes, and its count (histogram) or value (sum). */
export interface PointSummary {
  readonly attributes: Attributes;
  readonly count: number;
}

/** summarize lists the data points of a histogram or a sum, in the order of {@link inOrder}. */
export function summarize(metric: MetricData): PointSummary[] {
  return inOrder(
    metric.dataPointType === DataPointType.HISTOGRAM
      ? metric.dataPoints.map((p: DataPoint<Histogram>) => ({
          attributes: p.attributes,
          count: p.value.count,
        }))
      : metric.dataPoints.map((p) => ({ attributes: p.attributes, count: Number(p.value) })),
  );
}

/** inOrder sorts points by their attributes, whatever the order of the keys. */
export function inOrder(points: PointSummary[]): PointSummary[] {
  const key = (p: PointSummary) =>
    JSON.stringify(Object.entries(p.attributes).sort(([a], [b]) => a.localeCompare(b)));
  return points.sort((a, b) => key(a).localeCompare(key(b)));
}
