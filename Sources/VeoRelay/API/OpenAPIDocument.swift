import Foundation

/// The committed OpenAPI 3.1 description of the relay's API (`openapi.yaml` beside this file),
/// served at `/openapi.yaml` and checked against the routes and responses by the tests.
public enum OpenAPIDocument {
    public static func load() throws -> String {
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "yaml") else {
            throw ConfigurationError("openapi.yaml is missing from the VeoRelay resource bundle")
        }
        return try String(contentsOf: url, encoding: .utf8)
    }

    /// "METHOD /path" for every operation, path parameters written `{}`.
    public static func operations(in yaml: String) -> Set<String> {
        var operations: Set<String> = []
        var path: String?
        for line in yaml.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("  /"), line.hasSuffix(":") {
                path = normalise(String(line.dropFirst(2).dropLast()))
            } else if let path, let method = ["get", "post", "put", "patch", "delete"].first(where: { line == "    \($0):" }) {
                operations.insert("\(method.uppercased()) \(path)")
            } else if !line.hasPrefix(" "), !line.isEmpty {
                path = nil
            }
        }
        return operations
    }

    /// `/v1/tasks/:id` and `/v1/tasks/{task_id}` both become `/v1/tasks/{}`.
    public static func normalise(_ path: String) -> String {
        path.split(separator: "/", omittingEmptySubsequences: false).map { segment in
            segment.hasPrefix(":") || (segment.hasPrefix("{") && segment.hasSuffix("}")) ? "{}" : String(segment)
        }.joined(separator: "/")
    }
}
