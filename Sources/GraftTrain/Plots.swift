import CGraftPlots
import Foundation
import GraftFiles
import Synchronization

/// Plots as standalone SVG files (readable in any browser, no other tool needed), and PNG beside them where
/// librsvg renders them.
public enum Plots {
    static let pngNoteSaid = Atomic<Bool>(false)

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    /// Round tick values covering `lo…hi`: about `count` steps of 1, 2, 2.5 or 5 times a power of ten.
    static func ticks(_ lo: Double, _ hi: Double, count: Int = 5) -> (values: [Double], decimals: Int) {
        let raw = (hi - lo) / Double(max(count, 1))
        let power = pow(10, (log10(raw)).rounded(.down))
        let step = [1.0, 2, 2.5, 5, 10].map { $0 * power }.first { $0 >= raw } ?? 10 * power
        let first = (lo / step).rounded(.down) * step, last = (hi / step).rounded(.up) * step
        let n = Int(((last - first) / step).rounded())
        // Decimals the step needs: 0.05 → 2, 0.025 → 3, 0.5 → 1, 100 → 0.
        let unit = step >= 9.99 * power ? 10 * power : power
        let decimals = max(0, -Int(log10(unit).rounded()) + (abs(step / unit - 2.5) < 1e-9 ? 1 : 0))
        return ((0...n).map { first + Double($0) * step }, decimals)
    }

    /// A line chart of named series over epochs 1…n, the legend beside the plot, round ticks, and a dashed marker
    /// where each stage after the first starts (`stages`: name and the 0-based index of its first epoch).
    public static func lines(title: String, yLabel: String, series: [(name: String, values: [Double?])],
                             stages: [(name: String, start: Int)] = []) -> String {
        let (w, h, left, right, top, bottom) = (780.0, 380.0, 64.0, 210.0, 48.0, 50.0)
        // A series without a single value (no validation data) has neither a line nor a legend entry.
        let series = series.filter { $0.values.contains { $0?.isFinite == true } }
        let n = series.map(\.values.count).max() ?? 0
        let all = series.flatMap { $0.values.compactMap { $0 } }.filter(\.isFinite)
        var lo = all.min() ?? 0, hi = all.max() ?? 1
        if hi - lo < 1e-9 { lo -= 0.5; hi += 0.5 }
        let (yTicks, decimals) = ticks(lo, hi)
        lo = yTicks.first ?? lo; hi = yTicks.last ?? hi
        func x(_ i: Double) -> Double { left + (w - left - right) * (n <= 1 ? 0.5 : i / Double(n - 1)) }
        func y(_ v: Double) -> Double { top + (h - top - bottom) * (1 - (v - lo) / (hi - lo)) }
        let colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"]
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(w))\" height=\"\(Int(h))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        svg += "<text x=\"\((left + w - right) / 2)\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">\(escape(title))</text>\n"
        svg += "<line x1=\"\(left)\" y1=\"\(h - bottom)\" x2=\"\(w - right)\" y2=\"\(h - bottom)\" stroke=\"black\"/>\n"
        svg += "<line x1=\"\(left)\" y1=\"\(top)\" x2=\"\(left)\" y2=\"\(h - bottom)\" stroke=\"black\"/>\n"
        for v in yTicks {
            svg += "<text x=\"\(left - 6)\" y=\"\(y(v) + 4)\" text-anchor=\"end\">\(String(format: "%.\(decimals)f", v))</text>\n"
            svg += "<line x1=\"\(left)\" y1=\"\(y(v))\" x2=\"\(w - right)\" y2=\"\(y(v))\" stroke=\"#ddd\"/>\n"
        }
        // Epoch ticks at round steps (every epoch, or 1 and every 2, 5, 10, 20, … epochs).
        let epochStep = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000].first { n / $0 <= 12 } ?? max(1, n / 10)
        let epochTicks = (epochStep >= 5 ? [1] : []) + Array(stride(from: epochStep, through: n, by: epochStep))
        for e in epochTicks {
            svg += "<text x=\"\(x(Double(e - 1)))\" y=\"\(h - bottom + 18)\" text-anchor=\"middle\">\(e)</text>\n"
        }
        svg += "<text x=\"\((left + w - right) / 2)\" y=\"\(h - 10)\" text-anchor=\"middle\">epoch</text>\n"
        svg += "<text x=\"16\" y=\"\((top + h - bottom) / 2)\" text-anchor=\"middle\" transform=\"rotate(-90 16 \((top + h - bottom) / 2))\">\(escape(yLabel))</text>\n"
        for stage in stages where stage.start > 0 && stage.start < n {
            let sx = x(Double(stage.start) - 0.5)
            svg += "<line x1=\"\(sx)\" y1=\"\(top)\" x2=\"\(sx)\" y2=\"\(h - bottom)\" stroke=\"#888\" stroke-dasharray=\"4 3\"/>"
            svg += "<text x=\"\(sx + 4)\" y=\"\(top - 6)\" fill=\"#555\">\(escape(stage.name))</text>\n"
        }
        if let first = stages.first, n > 0 {
            svg += "<text x=\"\(x(0))\" y=\"\(top - 6)\" fill=\"#555\">\(escape(first.name))</text>\n"
        }
        for (k, s) in series.enumerated() {
            let color = colors[k % colors.count]
            let points = s.values.enumerated().compactMap { i, v in v.flatMap { $0.isFinite ? "\(x(Double(i))),\(y($0))" : nil } }
            svg += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(points.joined(separator: " "))\"/>\n"
            for p in points where n <= 60 {
                let xy = p.split(separator: ",")
                svg += "<circle cx=\"\(xy[0])\" cy=\"\(xy[1])\" r=\"3\" fill=\"\(color)\"/>\n"
            }
            // The legend sits right of the plot area, clear of every curve.
            let ly = top + 4 + Double(k) * 20
            svg += "<rect x=\"\(w - right + 16)\" y=\"\(ly)\" width=\"12\" height=\"12\" fill=\"\(color)\"/>"
            svg += "<text x=\"\(w - right + 34)\" y=\"\(ly + 10)\">\(escape(s.name))</text>\n"
        }
        return svg + "</svg>\n"
    }

    /// Where each stage starts in a run's records: its name and the index of its first epoch.
    public static func stageStarts(_ records: [EpochRecord]) -> [(name: String, start: Int)] {
        var out: [(name: String, start: Int)] = []
        for (i, r) in records.enumerated() where out.last?.name != r.stage { out.append((r.stage, i)) }
        return out
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

extension Plots {
    /// The PNG of an SVG plot at `scale` times its size, rendered by librsvg and cairo; throws when the machine
    /// lacks them (the SVG is what every run has).
    public static func png(_ svg: String, scale: Double = 2) throws -> Data {
        func attribute(_ name: String) -> Double? {
            guard let r = svg.range(of: " \(name)=\"") else { return nil }
            return Double(svg[r.upperBound...].prefix { $0 != "\"" })
        }
        guard let w = attribute("width"), let h = attribute("height") else { throw TrainError("plot", "the SVG gives no width and height") }
        var png: UnsafeMutablePointer<UInt8>?
        var length = 0
        var message = [CChar](repeating: 0, count: 256)
        let bytes = Array(svg.utf8)
        let status = bytes.withUnsafeBufferPointer { b in
            b.withMemoryRebound(to: CChar.self) {
                graft_svg_to_png($0.baseAddress, $0.count, Int32(w * scale), Int32(h * scale), &png, &length, &message, message.count)
            }
        }
        guard status == 0, let png else { throw TrainError("plot", String(cString: message)) }
        defer { graft_plots_free(png) }
        return Data(bytes: png, count: length)
    }
}

extension RunDirectory {
    /// Writes `NAME.svg` and, when this machine can render it, `NAME.png` beside it; returns the names written.
    /// A PNG that cannot be made is said once per process in `note` and is no error.
    public func writePlot(_ svg: String, named name: String, note: (String) -> Void = { _ in }) throws -> [String] {
        try write(svg, to: "\(name).svg")
        do {
            let png = try Plots.png(svg)
            do { try AtomicWrite.write(png, to: path("\(name).png")) } catch { throw TrainError(file: path("\(name).png"), error.reason) }
            return ["\(name).svg", "\(name).png"]
        } catch let e as TrainError where e.subject == "plot" {
            if Plots.pngNoteSaid.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged {
                note("plots: SVG only (\(e.message))")
            }
            return ["\(name).svg"]
        }
    }
}
