import Foundation
import HTTPTypes
import VeoRelay

/// How the simulated upstream behaves.
public struct SimulatorConfiguration: Sendable {
    /// The bearer key it accepts; nil accepts any non-empty key.
    public var apiKey: String?
    /// Multiplies every job duration and reported time: 0.01 makes a 90 s job take 0.9 s.
    public var timeScale: Double = 1
    /// Job durations in unscaled seconds, drawn uniformly per model (Veo's typical times).
    public var durations: [GenerationRequest.Model: ClosedRange<Double>] = [.fast: 60...180, .quality: 120...360]
    /// Share of jobs that end `failed`.
    public var failureRate: Double = 0
    /// Misbehaviour per request, by kind.
    public var faults = FaultRates()
    /// How long a "slow" response is held back (real seconds).
    public var slowResponseDelay: TimeInterval = 0.5
    /// The reported `estimated_time` is the true duration times a factor drawn from this range:
    /// `1...1` is honest.
    public var estimateAccuracy: ClosedRange<Double> = 1...1
    /// Jobs stay `processing` (below 100 %) until `releaseJobs()`, whatever the clock says, so a
    /// test never depends on how long its own steps take.
    public var holdJobs = false
    /// Where a finished job's video is, given its id; by default the simulator's own
    /// `/_simulator/videos/{id}.mp4`, which serves a real MP4 (`SimulatorVideo`).
    public var videoURL: (@Sendable (_ jobID: String) -> String)?
    /// Real seconds the video takes to download, sent in ten parts (0: at once), so that a harness can
    /// stop a relay mid-download.
    public var videoStreamDuration: TimeInterval = 0

    public init(apiKey: String? = nil, timeScale: Double = 1) {
        self.apiKey = apiKey
        self.timeScale = timeScale
    }

    /// Probabilities of each kind of misbehaviour for one request. Rejections (429, 500, 503) happen
    /// before a submission is processed, like a real gateway refusing work. The others come after the
    /// job was created, so the client cannot know it was accepted: a malformed or dropped answer, and
    /// a `502`/`504` from the gateway's proxy although the job now runs.
    public struct FaultRates: Sendable, Equatable {
        public var tooManyRequests = 0.0
        public var internalError = 0.0
        public var unavailable = 0.0
        public var slow = 0.0
        public var malformed = 0.0
        public var dropped = 0.0
        public var badGateway = 0.0
        public var gatewayTimeout = 0.0

        public init() {}

        /// `total` spread evenly over every kind.
        public static func spread(_ total: Double) -> FaultRates {
            var rates = FaultRates()
            let each = total / Double(Fault.allCases.count)
            for fault in Fault.allCases { rates[fault] = each }
            return rates
        }

        public subscript(fault: Fault) -> Double {
            get {
                switch fault {
                case .tooManyRequests: tooManyRequests
                case .internalError: internalError
                case .unavailable: unavailable
                case .slow: slow
                case .malformed: malformed
                case .dropped: dropped
                case .badGateway: badGateway
                case .gatewayTimeout: gatewayTimeout
                }
            }
            set {
                switch fault {
                case .tooManyRequests: tooManyRequests = newValue
                case .internalError: internalError = newValue
                case .unavailable: unavailable = newValue
                case .slow: slow = newValue
                case .malformed: malformed = newValue
                case .dropped: dropped = newValue
                case .badGateway: badGateway = newValue
                case .gatewayTimeout: gatewayTimeout = newValue
                }
            }
        }

        func draw() -> Fault? {
            var roll = Double.random(in: 0..<1)
            for fault in Fault.allCases {
                if roll < self[fault] { return fault }
                roll -= self[fault]
            }
            return nil
        }
    }

    public enum Fault: CaseIterable, Sendable {
        case tooManyRequests, internalError, unavailable, slow, malformed, dropped, badGateway, gatewayTimeout
    }

    /// How the simulated gateway words its answers: the documented shape by default, or the small
    /// differences other gateways of the family show, so that tests do not encode the happy case.
    public struct Dialect: Sendable, Equatable {
        /// Task objects and submission entries without the `{"code","data"}` envelope.
        public var bare = false
        /// Numeric task ids.
        public var numericIDs = false
        /// `queued`, `in_progress`, `succeeded`, `canceled` for the documented words.
        public var otherStatusWords = false
        /// `error` as a plain string; result `url` as a string, not an array.
        public var plainStrings = false
        /// Status answers the relay cannot read (an unknown status word).
        public var unreadableStatus = false
        /// Submissions refused with HTTP 200 and `{"code": 400, …}` in the body (no job is created).
        public var rejectionInBody = false

        public init() {}
    }

    public var dialect = Dialect()

    /// The account refuses every submission before creating a job, as a gateway does when the balance has
    /// run out (402) or the key was revoked (401); nil: the account is in order.
    public var accountRefusal: AccountRefusal?

    /// Keys whose account refuses work, each its own way (the others' accounts are in order).
    public var refusingKeys: [String: AccountRefusal] = [:]
    /// Jobs one key may have unfinished at once; a submission beyond answers 429 without creating a job.
    public var maxConcurrentJobsPerKey: Int?

    /// How the account behind `key` refuses work, if it does.
    func refusal(for key: String) -> AccountRefusal? {
        refusingKeys[key] ?? accountRefusal
    }

    public enum AccountRefusal: String, Sendable, CaseIterable {
        case balance, revokedKey

        var status: HTTPResponse.Status { self == .balance ? HTTPResponse.Status(code: 402, reasonPhrase: "Payment Required") : .unauthorized }
        var message: String { self == .balance ? "Insufficient balance: top up your account (simulated)" : "Invalid API key: the key was revoked (simulated)" }
    }

    /// A prompt containing this marker always fails, so demos and tests can ask for a failure.
    public static let failureMarker = "[simulate:fail]"
    public static let failureMessage = "The generation was blocked by the content safety filter (simulated)."
}
