import Foundation
import HTTPTypes
import Hummingbird
import Synchronization
@testable import VeoRelay

/// An upstream that answers exactly what the test scripts, for answers the simulator never gives
/// (absurd numbers, odd shapes). Submissions get task ids `scripted_1`, `scripted_2`, …
final class ScriptedUpstream: Sendable {
    struct Answer: Sendable {
        var status: HTTPResponse.Status = .ok
        var headers: HTTPFields = [:]
        var body: String
    }

    private let submissions = Mutex(0)
    private let polls = Mutex(0)
    private let answerSubmission: @Sendable (_ submission: Int) -> Answer
    private let answerPoll: @Sendable (_ poll: Int) -> Answer

    init(submit: @escaping @Sendable (_ submission: Int) -> Answer = ScriptedUpstream.accepted,
         poll: @escaping @Sendable (_ poll: Int) -> Answer) {
        answerSubmission = submit
        answerPoll = poll
    }

    /// A submission taken as `scripted_<number>`.
    static func accepted(_ number: Int) -> Answer {
        Answer(body: #"{"code": 200, "data": [{"status": "submitted", "task_id": "scripted_\#(number)"}]}"#)
    }

    var submissionCount: Int { submissions.withLock { $0 } }
    var pollCount: Int { polls.withLock { $0 } }

    func start() async throws -> RunningServer {
        let router = Router()
        router.post("/v1/videos/generations") { _, _ in
            let number = self.submissions.withLock { count in
                count += 1
                return count
            }
            return Self.response(self.answerSubmission(number))
        }
        router.get("/v1/tasks/:id") { _, _ in
            let number = self.polls.withLock { count in
                count += 1
                return count
            }
            return Self.response(self.answerPoll(number))
        }
        return try await RunningServer.start(router: router)
    }

    private static func response(_ answer: Answer) -> Response {
        var headers = answer.headers
        headers[.contentType] = "application/json"
        return Response(status: answer.status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: answer.body)))
    }

    /// A finished task with one video.
    static let completed = Answer(body: """
        {"code": 200, "data": {"id": "x", "status": "completed", "progress": 100, "actual_time": 12,
         "result": {"videos": [{"url": ["https://videos.example/x.mp4"], "expires_at": 1900000000}]}}}
        """)
}
