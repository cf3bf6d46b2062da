import type { Interceptor, Transport } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";

/**
 * The transports a demo server answers on one port, both HTTP versions:
 * Connect and gRPC-Web over HTTP/1.1, gRPC over h2c.
 */
export const demoTransports = {
  "connect over HTTP/1.1": (baseUrl: string, interceptors: Interceptor[]) =>
    createConnectTransport({ baseUrl, httpVersion: "1.1", interceptors }),
  "grpc-web over HTTP/1.1": (baseUrl: string, interceptors: Interceptor[]) =>
    createGrpcWebTransport({ baseUrl, httpVersion: "1.1", interceptors }),
  "grpc over HTTP/2 (h2c)": (baseUrl: string, interceptors: Interceptor[]) =>
    createGrpcTransport({ baseUrl, interceptors }),
} satisfies Record<string, (baseUrl: string, interceptors: Interceptor[]) => Transport>;
