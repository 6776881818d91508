import AsyncHTTPClient
import Foundation

/// Sends a signed `endpoint.test` event to one endpoint now, whatever its filter or state, with the
/// webhook client (so the address rules hold), and reports the one attempt. Not stored: nothing
/// retries it. The API's test call and the console's Test button both use it.
public struct EndpointTester: Sendable {
    let store: any EndpointDirectory
    let http: HTTPClient
    let timeout: TimeInterval
    let clock: any WallClock

    public struct Result: Sendable {
        public var eventID: String
        public var outcome: Dispatcher.Outcome
        public var delivered: Bool { (200..<300).contains(outcome.statusCode ?? 0) }

        /// One line for logs and the console.
        public var summary: String {
            let answer = outcome.statusCode.map { "HTTP \($0)" } ?? outcome.error ?? "no answer"
            return "\(delivered ? "delivered" : "not delivered"): \(answer) in \(Int((outcome.latency * 1_000).rounded())) ms"
        }
    }

    /// nil if there is no such endpoint in `scope`.
    public func test(_ endpoint: Endpoint, scope: ClientScope) async throws -> Result? {
        let now = clock.now()
        guard let secrets = try await store.endpointCredentials(id: endpoint.id, scope: scope, now: now) else { return nil }
        let eventID = Identifier.message()
        let payload = try JSONCoding.encode(ClientEventPayload(type: .endpointTest, at: now, data: EndpointEventData(endpoint)))
        let outcome = await Dispatcher.post(payload, as: eventID, to: endpoint.url, signedWith: secrets, http: http, timeout: timeout, at: now)
        return Result(eventID: eventID, outcome: outcome)
    }
}
