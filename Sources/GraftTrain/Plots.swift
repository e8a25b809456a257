import Foundation

/// Plots as standalone SVG files (readable in any browser, no other tool needed).
public enum Plots {
    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    /// A line chart of named series over epochs 1…n.
    public static func lines(title: String, yLabel: String, series: [(name: String, values: [Double?])]) -> String {
        let (w, h, left, right, top, bottom) = (640.0, 360.0, 60.0, 20.0, 40.0, 50.0)
        let n = series.map(\.values.count).max() ?? 0
        let all = series.flatMap { $0.values.compactMap { $0 } }.filter(\.isFinite)
        var lo = all.min() ?? 0, hi = all.max() ?? 1
        if hi - lo < 1e-9 { lo -= 0.5; hi += 0.5 }
        let pad = (hi - lo) * 0.05
        lo -= pad; hi += pad
        func x(_ i: Int) -> Double { left + (w - left - right) * (n <= 1 ? 0.5 : Double(i) / Double(n - 1)) }
        func y(_ v: Double) -> Double { top + (h - top - bottom) * (1 - (v - lo) / (hi - lo)) }
        let colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"]
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(w))\" height=\"\(Int(h))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        svg += "<text x=\"\(w / 2)\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">\(escape(title))</text>\n"
        svg += "<line x1=\"\(left)\" y1=\"\(h - bottom)\" x2=\"\(w - right)\" y2=\"\(h - bottom)\" stroke=\"black\"/>\n"
        svg += "<line x1=\"\(left)\" y1=\"\(top)\" x2=\"\(left)\" y2=\"\(h - bottom)\" stroke=\"black\"/>\n"
        for k in 0...4 {
            let v = lo + (hi - lo) * Double(k) / 4
            svg += "<text x=\"\(left - 6)\" y=\"\(y(v) + 4)\" text-anchor=\"end\">\(String(format: "%.3g", v))</text>\n"
            svg += "<line x1=\"\(left)\" y1=\"\(y(v))\" x2=\"\(w - right)\" y2=\"\(y(v))\" stroke=\"#ddd\"/>\n"
        }
        for i in 0..<n where n <= 20 || i % max(1, n / 10) == 0 {
            svg += "<text x=\"\(x(i))\" y=\"\(h - bottom + 18)\" text-anchor=\"middle\">\(i + 1)</text>\n"
        }
        svg += "<text x=\"\((left + w - right) / 2)\" y=\"\(h - 10)\" text-anchor=\"middle\">epoch</text>\n"
        svg += "<text x=\"16\" y=\"\((top + h - bottom) / 2)\" text-anchor=\"middle\" transform=\"rotate(-90 16 \((top + h - bottom) / 2))\">\(escape(yLabel))</text>\n"
        for (k, s) in series.enumerated() {
            let color = colors[k % colors.count]
            let points = s.values.enumerated().compactMap { i, v in v.flatMap { $0.isFinite ? "\(x(i)),\(y($0))" : nil } }
            svg += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(points.joined(separator: " "))\"/>\n"
            for p in points {
                let xy = p.split(separator: ",")
                svg += "<circle cx=\"\(xy[0])\" cy=\"\(xy[1])\" r=\"3\" fill=\"\(color)\"/>\n"
            }
            svg += "<rect x=\"\(w - right - 150)\" y=\"\(top + 8 + Double(k) * 18)\" width=\"12\" height=\"12\" fill=\"\(color)\"/>"
            svg += "<text x=\"\(w - right - 132)\" y=\"\(top + 18 + Double(k) * 18)\">\(escape(s.name))</text>\n"
        }
        return svg + "</svg>\n"
    }

    /// A confusion-matrix heat map with counts in every cell.
    public static func confusion(_ m: [[Int]], names: [String], title: String) -> String {
        let k = m.count
        let cell = max(28.0, min(60.0, 480.0 / Double(max(k, 1))))
        let left = 130.0, top = 60.0
        let w = left + cell * Double(k) + 20, h = top + cell * Double(k) + 110
        let maxCount = max(1, m.flatMap { $0 }.max() ?? 1)
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(w))\" height=\"\(Int(h))\" font-family=\"sans-serif\" font-size=\"11\">\n"
        svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        svg += "<text x=\"\(w / 2)\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">\(escape(title))</text>\n"
        svg += "<text x=\"\(left + cell * Double(k) / 2)\" y=\"\(top + cell * Double(k) + 95)\" text-anchor=\"middle\">predicted</text>\n"
        svg += "<text x=\"14\" y=\"\(top + cell * Double(k) / 2)\" text-anchor=\"middle\" transform=\"rotate(-90 14 \(top + cell * Double(k) / 2))\">true</text>\n"
        for i in 0..<k {
            let name = escape(i < names.count ? names[i] : "\(i)")
            svg += "<text x=\"\(left - 6)\" y=\"\(top + cell * (Double(i) + 0.5) + 4)\" text-anchor=\"end\">\(name)</text>\n"
            let cx = left + cell * (Double(i) + 0.5), cy = top + cell * Double(k) + 8
            svg += "<text x=\"\(cx)\" y=\"\(cy)\" text-anchor=\"end\" transform=\"rotate(-45 \(cx) \(cy))\">\(name)</text>\n"
            for j in 0..<k {
                let v = Double(m[i][j]) / Double(maxCount)
                let shade = Int(255 - 200 * v)
                svg += "<rect x=\"\(left + cell * Double(j))\" y=\"\(top + cell * Double(i))\" width=\"\(cell)\" height=\"\(cell)\" fill=\"rgb(\(shade),\(shade),255)\" stroke=\"white\"/>"
                svg += "<text x=\"\(left + cell * (Double(j) + 0.5))\" y=\"\(top + cell * (Double(i) + 0.5) + 4)\" text-anchor=\"middle\" fill=\"\(v > 0.6 ? "white" : "black")\">\(m[i][j])</text>\n"
            }
        }
        return svg + "</svg>\n"
    }
}
