import Foundation
import Synchronization

/// What one client may spend: generations and seconds of video requested per UTC day and UTC
/// calendar month, and tasks in flight (accepted, not yet ended). A limit left nil is unlimited.
public struct ClientBudget: Sendable, Equatable {
    public var limits: [BudgetLimit: Int]

    public init(_ limits: [BudgetLimit: Int] = [:]) {
        self.limits = limits
    }

    public static let unlimited = ClientBudget()

    public var isUnlimited: Bool { limits.isEmpty }

    public subscript(limit: BudgetLimit) -> Int? {
        get { limits[limit] }
        set { limits[limit] = newValue }
    }

    /// Parses the configuration's form, `per_day=500,in_flight=50` (empty: unlimited).
    public init(parsing text: String) throws {
        self.init()
        // Split and trimmed without Foundation: intake parses a budgeted client's limits on every task.
        for item in text.split(separator: ",") {
            let start = item.drop(while: \.isWhitespace)
            guard let last = start.lastIndex(where: { !$0.isWhitespace }) else { continue }
            let part = start[...last]
            let pair = part.split(separator: "=", maxSplits: 1).map { String($0) }
            guard pair.count == 2, let limit = BudgetLimit(rawValue: pair[0]) else {
                throw ConfigurationError("budget: '\(part)' is not one of \(BudgetLimit.allCases.map { "\($0.rawValue)=N" }.joined(separator: ", "))")
            }
            guard let value = Int(pair[1]), value >= 0 else { throw ConfigurationError("budget: \(limit.rawValue) must be a whole number ≥ 0") }
            limits[limit] = value
        }
    }

    /// A stored budget, as intake reads it on every task of a budgeted client: parsed once per
    /// distinct text (there are as few as there are budgets set).
    static func stored(_ text: String) throws -> ClientBudget {
        if let known = parsedTexts.withLock({ $0[text] }) { return known }
        let budget = try ClientBudget(parsing: text)
        parsedTexts.withLock { known in
            if known.count >= 1_024 { known.removeAll() }
            known[text] = budget
        }
        return budget
    }

    private static let parsedTexts = Mutex<[String: ClientBudget]>([:])

    /// The configuration's form again, limits in a fixed order; "unlimited" when none is set.
    public var text: String {
        isUnlimited ? "unlimited" : BudgetLimit.allCases.compactMap { limit in self[limit].map { "\(limit.rawValue)=\($0)" } }.joined(separator: ",")
    }

    /// Whether a task asking for `seconds` of video fits beside what the client has used, and if it
    /// does, what is left of each limit once it is counted.
    public func admit(seconds: Int, beside use: BudgetUse, at now: Date) -> BudgetDecision {
        var remaining: [BudgetLimit: Int] = [:]
        for limit in BudgetLimit.allCases {
            guard let maximum = self[limit] else { continue }
            let after = use[limit] + limit.cost(ofSeconds: seconds)
            guard after <= maximum else {
                return .refused(BudgetRefusal(limit: limit, maximum: maximum, resetsAt: limit.period?.end(of: now)))
            }
            remaining[limit] = maximum - after
        }
        return .admitted(remaining)
    }
}

/// One of a client's limits, named as the API and the shell name it.
public enum BudgetLimit: String, Sendable, CaseIterable {
    case perDay = "per_day"
    case perMonth = "per_month"
    case videoSecondsPerDay = "video_seconds_per_day"
    case videoSecondsPerMonth = "video_seconds_per_month"
    case inFlight = "in_flight"

    /// The period it counts over; nil for the in-flight cap, which frees up as tasks end.
    public var period: UsagePeriod? {
        switch self {
        case .perDay, .videoSecondsPerDay: .day
        case .perMonth, .videoSecondsPerMonth: .month
        case .inFlight: nil
        }
    }

    /// What one task of `seconds` counts against it.
    func cost(ofSeconds seconds: Int) -> Int {
        switch self {
        case .videoSecondsPerDay, .videoSecondsPerMonth: seconds
        case .perDay, .perMonth, .inFlight: 1
        }
    }

    /// In words, for messages: "500 generations per UTC day".
    public func describe(_ maximum: Int) -> String {
        switch self {
        case .perDay: "\(maximum) generations per UTC day"
        case .perMonth: "\(maximum) generations per UTC month"
        case .videoSecondsPerDay: "\(maximum) seconds of video per UTC day"
        case .videoSecondsPerMonth: "\(maximum) seconds of video per UTC month"
        case .inFlight: "\(maximum) tasks in flight"
        }
    }
}

/// What a client has used, of the periods a task accepted now counts in.
public struct BudgetUse: Sendable, Equatable {
    public var generationsToday = 0
    public var generationsThisMonth = 0
    public var videoSecondsToday = 0
    public var videoSecondsThisMonth = 0
    public var inFlight = 0

    public init() {}

    subscript(limit: BudgetLimit) -> Int {
        switch limit {
        case .perDay: generationsToday
        case .perMonth: generationsThisMonth
        case .videoSecondsPerDay: videoSecondsToday
        case .videoSecondsPerMonth: videoSecondsThisMonth
        case .inFlight: inFlight
        }
    }
}

/// What intake makes of a budgeted client's task, beside what the client has used: refused naming the
/// limit, or admitted with what is left of each limit and the alerts it sets off. Both stores decide
/// with it inside intake's transaction, after counting the tasks before it.
enum BudgetAdmission: Equatable {
    case refused(BudgetRefusal)
    case admitted(remaining: [BudgetLimit: Int], alerts: [BudgetAlert])

    init(_ task: RelayTask, budget: ClientBudget, beside use: BudgetUse) {
        let seconds = task.request.requestedSeconds
        switch budget.admit(seconds: seconds, beside: use, at: task.createdAt) {
        case .refused(let refusal): self = .refused(refusal)
        case .admitted(let remaining):
            self = .admitted(remaining: remaining, alerts: BudgetAlert.crossings(of: budget, clientID: task.clientID, seconds: seconds,
                                                                                 beside: use, at: task.createdAt))
        }
    }
}

public enum BudgetDecision: Sendable, Equatable {
    /// Counted; what is left of each limit the client has.
    case admitted([BudgetLimit: Int])
    case refused(BudgetRefusal)
}

/// The limit a task would have gone past.
public struct BudgetRefusal: Sendable, Equatable {
    public var limit: BudgetLimit
    public var maximum: Int
    /// When the period ends and the limit frees up; nil for the in-flight cap.
    public var resetsAt: Date?
}

/// The UTC periods budgets and usage count over. Days are named `yyyy-MM-dd`, so a month's days
/// are the names between `yyyy-MM-01` and `yyyy-MM-31` in text order.
public enum UsagePeriod: Sendable {
    case day
    case month

    static let calendar: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar
    }()

    /// The first instant after the period that holds `date`.
    public func end(of date: Date) -> Date {
        let calendar = Self.calendar
        switch self {
        case .day:
            return calendar.date(byAdding: .day, value: 1, to: calendar.startOfDay(for: date))!
        case .month:
            let start = calendar.date(from: calendar.dateComponents([.year, .month], from: date))!
            return calendar.date(byAdding: .month, value: 1, to: start)!
        }
    }

    /// The name of the UTC day that holds `date`. Worked out from the day number (Howard Hinnant's
    /// `civil_from_days`) rather than by `Calendar`, which costs more than the rest of an intake's
    /// budget check together.
    public static func day(of date: Date) -> String {
        let days = Int((date.timeIntervalSince1970 / 86_400).rounded(.down)) + 719_468
        let era = (days >= 0 ? days : days - 146_096) / 146_097
        let dayOfEra = days - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1_460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shiftedMonth = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * shiftedMonth + 2) / 5 + 1
        let month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        func padded(_ value: Int, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(padded(year, 4))-\(padded(month, 2))-\(padded(day, 2))"
    }

    /// The first and last possible day names of the UTC month that holds `date`.
    public static func monthDays(of date: Date) -> (first: String, last: String) {
        let prefix = day(of: date).prefix(8)
        return (prefix + "01", prefix + "31")
    }

    /// The start of a named day; nil if `name` is not a real `yyyy-MM-dd` date.
    public static func start(ofDay name: String) -> Date? {
        let parts = name.split(separator: "-").compactMap { Int($0) }
        guard name.count == 10, parts.count == 3,
              let date = calendar.date(from: DateComponents(year: parts[0], month: parts[1], day: parts[2])),
              day(of: date) == name else { return nil }
        return date
    }
}

extension GenerationRequest {
    /// The model's length when a request names none (the upstream's documented default).
    public static let defaultDuration = 8

    /// The seconds of video this request asks for, as budgets and usage count them.
    public var requestedSeconds: Int { duration ?? Self.defaultDuration }
}
