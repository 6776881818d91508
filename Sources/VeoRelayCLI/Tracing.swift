import ArgumentParser
import Foundation
import Logging
import OTel
import ServiceLifecycle
import VeoRelay

/// OpenTelemetry tracing for `serve`: off unless a collector is named. One trace per task, from the
/// intake request through submission, polls and every delivery attempt (see `TaskTrace`); webhook
/// requests carry its `traceparent`. The standard `OTEL_*` variables (protocol, headers, sampler,
/// resource attributes…) refine the exporter.
struct TracingOptions: ParsableArguments {
    @Option(help: "Export OpenTelemetry traces over OTLP/HTTP to this collector, e.g. http://otel-collector:4318 (spans go to /v1/traces). [env: VEO_RELAY_OTEL_ENDPOINT] (default: off)")
    var otelEndpoint: String?

    /// Installs the process's tracer. The returned service exports spans and flushes them when it
    /// stops, so it goes first in the service group (which stops services in reverse order).
    func bootstrap(logger: Logger) throws -> (any Service)? {
        guard let endpoint = otelEndpoint ?? Env.string("VEO_RELAY_OTEL_ENDPOINT") else { return nil }
        let components = URLComponents(string: endpoint)
        guard ["http", "https"].contains(components?.scheme?.lowercased() ?? ""), !(components?.host ?? "").isEmpty else {
            throw ConfigurationError("--otel-endpoint / VEO_RELAY_OTEL_ENDPOINT must be an absolute http(s) URL, not '\(endpoint)'")
        }
        var configuration = OTel.Configuration.default
        configuration.serviceName = "veo-relay"
        configuration.diagnosticLogger = .custom(logger)
        configuration.logs.enabled = false
        configuration.metrics.enabled = false
        configuration.traces.otlpExporter.endpoint = endpoint.hasSuffix("/") ? endpoint + "v1/traces" : endpoint + "/v1/traces"
        return try OTel.bootstrap(configuration: configuration)
    }
}
