import Foundation
import Testing
@testable import VeoRelay

/// The UTC periods budgets count over, worked out without `Calendar` on intake's path.
@Suite("Usage periods", .stopsWhatItStarts)
struct UsagePeriodTests {
    /// Every day from 1900 to 2200 (leap years, the century rules, 1970 itself), at its first and
    /// last second, is named as Foundation's Gregorian UTC calendar names it.
    @Test func dayNamesMatchTheGregorianCalendar() {
        let calendar = UsagePeriod.calendar
        var date = calendar.date(from: DateComponents(year: 1900, month: 1, day: 1))!
        let end = calendar.date(from: DateComponents(year: 2200, month: 1, day: 1))!
        var mismatches: [String] = []
        while date < end {
            let parts = calendar.dateComponents([.year, .month, .day], from: date)
            let expected = String(format: "%04d-%02d-%02d", parts.year!, parts.month!, parts.day!)
            for moment in [date, date.addingTimeInterval(86_399.5)] where UsagePeriod.day(of: moment) != expected {
                mismatches.append("\(moment): \(UsagePeriod.day(of: moment)), not \(expected)")
            }
            date = date.addingTimeInterval(86_400)
        }
        #expect(mismatches.isEmpty, "\(mismatches.prefix(5))")
    }

    @Test func budgetsParseWithSpacesAndRefuseWhatTheyDoNotKnow() throws {
        #expect(try ClientBudget(parsing: " per_day=5 , in_flight=2,") == ClientBudget([.perDay: 5, .inFlight: 2]))
        #expect(try ClientBudget(parsing: "") == .unlimited)
        #expect(throws: ConfigurationError.self) { try ClientBudget(parsing: "per_week=5") }
        #expect(throws: ConfigurationError.self) { try ClientBudget(parsing: "per_day=-1") }
    }
}
