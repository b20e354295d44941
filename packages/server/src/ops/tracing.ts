import { ROOT_CONTEXT, SpanStatusCode, TraceFlags, trace, type Attributes, type Span } from '@opentelemetry/api'
import type { DocumentTracer } from '../documents/ports.js'

/**
 * OpenTelemetry spans for connect, document load, apply and append. Off unless
 * `startTracing` ran (`concord serve --otel <url>`): until then no span is even
 * created, so the edit path pays one boolean check.
 */
let enabled = false

/** Whether spans are recorded (an exporter is configured). */
export function tracingEnabled(): boolean {
  return enabled
}

const tracer = () => trace.getTracer('concord')

/**
 * A span, or null when tracing is off. End it with `endSpan`. With `parent` (a W3C traceparent
 * that came with an update from another node or region), the span continues that edit's trace.
 */
export function startSpan(name: string, attributes: Attributes, parent?: string | null): Span | null {
  if (!enabled) return null
  const remote = parent === undefined || parent === null ? null : parseTraceparent(parent)
  if (remote === null) return tracer().startSpan(name, { attributes })
  return tracer().startSpan(name, { attributes }, trace.setSpanContext(ROOT_CONTEXT, remote))
}

/** `00-<trace id>-<span id>-<flags>` of a span (W3C Trace Context), or null. */
export function traceparent(span: object | null): string | null {
  if (span === null) return null
  const c = (span as Span).spanContext()
  return `00-${c.traceId}-${c.spanId}-${(c.traceFlags & TraceFlags.SAMPLED) === TraceFlags.SAMPLED ? '01' : '00'}`
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/

/** A remote span context from a traceparent (anything malformed or all-zero is ignored). */
export function parseTraceparent(text: string): { traceId: string; spanId: string; traceFlags: number; isRemote: true } | null {
  const m = TRACEPARENT.exec(text)
  if (m === null || /^0+$/.test(m[1]!) || /^0+$/.test(m[2]!)) return null
  return { traceId: m[1]!, spanId: m[2]!, traceFlags: Number.parseInt(m[3]!, 16) & TraceFlags.SAMPLED, isRemote: true }
}

export function endSpan(span: Span | null, error?: unknown, attributes?: Attributes): void {
  if (span === null) return
  if (attributes !== undefined) span.setAttributes(attributes)
  if (error !== undefined) {
    span.recordException(error instanceof Error ? error : new Error(String(error)))
    span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) })
  }
  span.end()
}

/** The tracer documents use (their load, apply and append spans). */
export const documentTracer: DocumentTracer = { startSpan, endSpan, traceparent }

/**
 * Export spans over OTLP/HTTP (JSON) to `<url>/v1/traces` in batches. Returns the
 * function that flushes and stops the exporter (at shutdown).
 */
export async function startTracing(options: { url: string; serviceName: string; serviceVersion: string; instanceId?: string }): Promise<() => Promise<void>> {
  const [{ NodeTracerProvider, BatchSpanProcessor }, { OTLPTraceExporter }, { resourceFromAttributes }] = await Promise.all([
    import('@opentelemetry/sdk-trace-node'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/resources'),
  ])
  const exporter = new OTLPTraceExporter({ url: `${options.url.replace(/\/+$/, '')}/v1/traces` })
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({
      'service.name': options.serviceName,
      'service.version': options.serviceVersion,
      ...(options.instanceId !== undefined ? { 'service.instance.id': options.instanceId } : {}),
    }),
    spanProcessors: [new BatchSpanProcessor(exporter)],
  })
  provider.register()
  enabled = true
  return async () => {
    enabled = false
    await provider.shutdown().catch(() => undefined)
  }
}
