import Foundation

/// A line or bar chart as inline SVG, for pages without scripts: one polyline (or one bar per slot)
/// per series over equal slots, the largest value on the y axis, the window's ends on the x axis. Only
/// numbers and the chart's own labels (escaped) go into it; nothing a client sent.
struct SVGChart {
    struct Series {
        var name: String
        var color: String
        var values: [Double?]
    }

    var title: String
    var unit: String
    var series: [Series]
    var startLabel: String
    var endLabel: String
    /// A fixed top (e.g. 100 for a percentage); otherwise the largest value.
    var maximum: Double?
    /// Bars (side by side within each slot) instead of lines.
    var bars = false

    static let width = 640.0, height = 180.0, left = 48.0, right = 8.0, top = 36.0, bottom = 22.0

    var svg: String {
        let plotWidth = Self.width - Self.left - Self.right, plotHeight = Self.height - Self.top - Self.bottom
        let count = series.map(\.values.count).max() ?? 1
        // Lines join slot edges; bars fill slot widths.
        let slots = max(1, bars ? count : count - 1)
        let top = maximum ?? max(1, series.flatMap { $0.values.compactMap { $0 } }.max() ?? 1)
        func x(_ index: Int) -> String { format(Self.left + plotWidth * Double(index) / Double(slots)) }
        func height(_ value: Double) -> Double { plotHeight * min(value, top) / top }
        func y(_ value: Double) -> String { format(Self.top + plotHeight - height(value)) }
        // Attributes in single quotes, so the markup needs no escaping in Swift's strings.
        var parts: [String] = [
            "<svg class='chart' xmlns='http://www.w3.org/2000/svg' width='\(format(Self.width))' height='\(format(Self.height))' "
                + "viewBox='0 0 \(format(Self.width)) \(format(Self.height))' role='img' aria-label='\(escape(title))'>",
            "<text x='\(format(Self.left))' y='14' font-size='12' font-weight='bold'>\(escape(title))</text>",
            "<line x1='\(format(Self.left))' y1='\(y(0))' x2='\(format(Self.width - Self.right))' y2='\(y(0))' stroke='#999'/>",
            "<line x1='\(format(Self.left))' y1='\(y(top))' x2='\(format(Self.left))' y2='\(y(0))' stroke='#999'/>",
            "<text x='\(format(Self.left - 4))' y='\(y(top))' font-size='10' text-anchor='end'>\(format(top)) \(escape(unit))</text>",
            "<text x='\(format(Self.left - 4))' y='\(y(0))' font-size='10' text-anchor='end'>0</text>",
            "<text x='\(format(Self.left))' y='\(format(Self.height - 6))' font-size='10'>\(escape(startLabel))</text>",
            "<text x='\(format(Self.width - Self.right))' y='\(format(Self.height - 6))' font-size='10' text-anchor='end'>\(escape(endLabel))</text>",
        ]
        let barWidth = plotWidth / Double(slots) * 0.8 / Double(max(1, series.count))
        for (number, line) in series.enumerated() where bars {
            for (index, value) in line.values.enumerated() {
                guard let value, value > 0 else { continue }
                let left = Self.left + plotWidth * (Double(index) + 0.1) / Double(slots) + barWidth * Double(number)
                parts.append("<rect class='bar' x='\(format(left))' y='\(y(value))' width='\(format(barWidth))' "
                    + "height='\(format(height(value)))' fill='\(line.color)'/>")
            }
        }
        for (number, line) in series.enumerated() {
            // Slots without a value break the line rather than drawing a false zero.
            var runs: [[String]] = [[]]
            for (index, value) in line.values.enumerated() {
                if let value { runs[runs.count - 1].append("\(x(index)),\(y(value))") } else if !runs[runs.count - 1].isEmpty { runs.append([]) }
            }
            for run in runs where !run.isEmpty && !bars {
                if run.count == 1 {
                    // A lone value: a dot, where a one-point line would not show.
                    let point = run[0].split(separator: ",")
                    parts.append("<circle class='series' cx='\(point[0])' cy='\(point[1])' r='2.5' fill='\(line.color)'/>")
                } else {
                    parts.append("<polyline class='series' fill='none' stroke='\(line.color)' stroke-width='1.5' points='\(run.joined(separator: " "))'/>")
                }
            }
            let legendX = Self.left + Double(number) * 130
            parts.append("<text x='\(format(legendX))' y='29' font-size='11' fill='\(line.color)'>■ \(escape(line.name))</text>")
        }
        parts.append("</svg>")
        return parts.joined(separator: "\n")
    }

    private func format(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(format: "%.1f", value)
    }

    private func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;").replacingOccurrences(of: "'", with: "&#39;")
    }
}
