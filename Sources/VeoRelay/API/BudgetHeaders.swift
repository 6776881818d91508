import Foundation
import HTTPTypes
import Hummingbird

/// The remaining budget on every accepted generation: one header per limit the client has.
enum BudgetHeaders {
    /// `Budget-Remaining-Per-Day` and so on, made once.
    static let names: [BudgetLimit: HTTPField.Name] = Dictionary(uniqueKeysWithValues: BudgetLimit.allCases.map { limit in
        (limit, HTTPField.Name("Budget-Remaining-" + limit.rawValue.split(separator: "_").map { $0.capitalized }.joined(separator: "-"))!)
    })

    static func name(_ limit: BudgetLimit) -> HTTPField.Name { names[limit]! }

    static func add(_ remaining: [BudgetLimit: Int], to headers: inout HTTPFields) {
        for limit in BudgetLimit.allCases {
            if let left = remaining[limit] { headers[name(limit)] = String(left) }
        }
    }
}

extension APIError {
    /// 429 `budget_exceeded`, naming the limit; `Retry-After` until its period ends (none for the
    /// in-flight cap, which frees up when a task ends).
    static func overBudget(_ refusal: BudgetRefusal, now: Date) -> APIError {
        var message = "This client's budget allows \(refusal.limit.describe(refusal.maximum))"
        if let reset = refusal.resetsAt {
            message += "; it resets at \(reset.formatted(.iso8601))."
        } else {
            message += "; a new task is accepted when one of them ends."
        }
        var error = APIError(.tooManyRequests, type: "budget_exceeded", message: message, param: refusal.limit.rawValue)
        if let reset = refusal.resetsAt { error.headers[.retryAfter] = String(max(1, Int(reset.timeIntervalSince(now).rounded(.up)))) }
        return error
    }
}
