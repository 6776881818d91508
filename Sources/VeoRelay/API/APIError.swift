import Foundation
import Hummingbird
import Logging
import Metrics

/// The error envelope shared with the upstream: `{"code":400,"error":{"message","type","param"}}`.
public struct APIError: HTTPResponseError, Sendable {
    public var status: HTTPResponse.Status
    public var message: String
    public var type: String
    public var param: String?
    public var headers: HTTPFields = [:]

    public init(_ status: HTTPResponse.Status, type: String, message: String, param: String? = nil) {
        self.status = status
        self.type = type
        self.message = message
        self.param = param
    }

    public static func invalidRequest(_ message: String, param: String? = nil) -> APIError {
        APIError(.badRequest, type: "invalid_request_error", message: message, param: param)
    }

    public static func validation(_ failure: ValidationFailure) -> APIError {
        invalidRequest(failure.message, param: failure.param)
    }

    public static let unauthorized = APIError(
        .unauthorized, type: "authentication_error",
        message: "Missing or invalid API key. Send 'Authorization: Bearer <relay API key>'.")

    public static func notFound(_ message: String) -> APIError {
        APIError(.notFound, type: "not_found_error", message: message)
    }

    /// The database cannot serve right now: come back later, this is no bug.
    public static func storage(_ fault: StorageFault) -> APIError {
        var (error, retryAfter) = switch fault {
        case .unavailable, .unreachable:
            (APIError(.serviceUnavailable, type: "unavailable", message: "The relay cannot reach its database: \(fault). Retry later."), "5")
        case .full:
            (APIError(.serviceUnavailable, type: "storage_full",
                      message: "The relay's storage is full; nothing new can be accepted until an operator frees space. Retry later."), "30")
        }
        error.headers[.retryAfter] = retryAfter
        return error
    }

    public static let internalError = APIError(
        .internalServerError, type: "api_error", message: "The relay failed to handle the request; it has been logged.")

    struct Envelope: Codable {
        struct Body: Codable {
            var message: String
            var type: String
            var param: String?
        }

        var code: Int
        var error: Body
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var response = try JSONResponse.make(status, Envelope(code: status.code, error: .init(message: message, type: type, param: param)))
        response.headers.append(contentsOf: headers)
        return response
    }
}

/// JSON responses written with the relay's encoder (stable key order, explicit nulls omitted).
public enum JSONResponse {
    public static func make(_ status: HTTPResponse.Status = .ok, _ value: some Encodable) throws -> Response {
        Response(status: status, headers: [.contentType: "application/json"],
                 body: .init(byteBuffer: ByteBuffer(bytes: try JSONCoding.encode(value))))
    }
}

/// Turns every failure into the JSON envelope: framework errors (unknown route, body too large)
/// keep their status; a database that cannot serve becomes a 503 with `Retry-After`, logged at most
/// once a second with a count (a fault lasts, and every request meets it); anything unexpected
/// becomes a logged 500 that reveals nothing.
public struct ErrorEnvelopeMiddleware<Context: RequestContext>: RouterMiddleware {
    let storageFaults: FailureBackoff

    public init(logger: Logger) {
        storageFaults = FailureBackoff(component: "api-database", logger: logger)
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            throw error
        } catch let fault as StorageFault {
            Counter(label: "veo_relay_storage_faults_total", dimensions: [("kind", fault.kind)]).increment()
            storageFaults.failed("requests answered 503: the database cannot serve", error: fault)
            throw APIError.storage(fault)
        } catch let error as HTTPError {
            let type = switch error.status {
            case .notFound: "not_found_error"
            case .unauthorized: "authentication_error"
            default: "invalid_request_error"
            }
            let message = error.body ?? (error.status == .notFound ? "No such endpoint: \(request.method) \(request.uri.path)" : error.status.reasonPhrase)
            var apiError = APIError(error.status, type: type, message: message)
            apiError.headers = error.headers
            throw apiError
        } catch {
            context.logger.error("request failed", metadata: ["error": "\(error)", "path": "\(request.uri.path)"])
            throw APIError.internalError
        }
    }
}
