import Tracing

/// One trace per task. The intake request's span context is stored with the task as a W3C
/// `traceparent`; the submission, every poll and every delivery attempt start their spans from it, so
/// the whole life of a task is one trace whichever instance does each step and however much later.
/// AsyncHTTPClient adds a client span under each of these for the request itself and sends its
/// `traceparent`, so webhook receivers (and the upstream) can continue the trace. With tracing off
/// (the default) the no-op tracer makes all of this free and stores nothing.
enum TaskTrace {
    static let traceParentKey = "traceparent"

    /// The current span's `traceparent`, to be stored with a new task.
    static func currentParent() -> String? {
        guard let context = ServiceContext.current else { return nil }
        var carrier: [String: String] = [:]
        InstrumentationSystem.instrument.inject(context, into: &carrier, using: DictionaryCarrier())
        return carrier[traceParentKey]
    }

    /// Runs `operation` in a span that continues the task's stored trace (or starts one when the
    /// task has none), tagged with the task's id; an error it throws marks the span failed.
    static func span<T, E: Error>(
        _ name: String, continuing traceParent: String?, taskID: String?, kind: SpanKind = .client,
        _ operation: (any Span) async throws(E) -> T
    ) async throws(E) -> T {
        var context = ServiceContext.topLevel
        if let traceParent {
            InstrumentationSystem.instrument.extract([traceParentKey: traceParent], into: &context, using: DictionaryCarrier())
        }
        let result: Result<T, E> = await withSpan(name, context: context, ofKind: kind) { span in
            if let taskID { span.attributes["veo_relay.task_id"] = taskID }
            do throws(E) {
                return .success(try await operation(span))
            } catch {
                span.recordError(error)
                span.setStatus(SpanStatus(code: .error))
                return .failure(error)
            }
        }
        return try result.get()
    }

    struct DictionaryCarrier: Injector, Extractor {
        func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) { carrier[key] = value }
        func extract(key: String, from carrier: [String: String]) -> String? { carrier[key] }
    }
}
