import Foundation
import Testing
@testable import GraftTrain

/// Plots: round ticks, the legend clear of the curves, a marker at each stage start, PNG beside SVG.
struct PlotTests {
    @Test(arguments: [(0.308, 0.446, [0.30, 0.35, 0.40, 0.45]), (0.0, 1.0, [0, 0.2, 0.4, 0.6, 0.8, 1.0]),
                      (1.37, 2.91, [1.0, 1.5, 2.0, 2.5, 3.0]), (0.61, 0.71, [0.6, 0.62, 0.64, 0.66, 0.68, 0.70, 0.72]), (12.0, 480.0, [0, 100, 200, 300, 400, 500])])
    func ticksAreRound(_ lo: Double, _ hi: Double, _ want: [Double]) {
        let (values, _) = Plots.ticks(lo, hi)
        #expect(values.count == want.count && zip(values, want).allSatisfy { abs($0 - $1) < 1e-9 }, "\(values)")
        #expect(values.first! <= lo && values.last! >= hi)
    }

    @Test func legendStagesAndLabels() throws {
        let values: [Double?] = [0.31, 0.35, 0.40, 0.446, 0.44, 0.43]
        let svg = Plots.lines(title: "Accuracy", yLabel: "accuracy", series: [("train", values), ("validation", values.map { _ in nil })],
                              stages: [("warmup", 0), ("finetune", 4)])
        // Tick labels are round with as many decimals as the step needs: 0.30, 0.35, … not 0.308, 0.446.
        #expect(svg.contains(">0.30</text>") && svg.contains(">0.45</text>") && !svg.contains(">0.308"), "\(svg)")
        #expect(Plots.ticks(0.0, 0.1).decimals == 2 && Plots.ticks(0, 500).decimals == 0 && Plots.ticks(0, 0.11).decimals == 3)
        // The legend starts right of the plot area (x > 780 − 210): no curve point is there.
        let legendX = try #require(svg.range(of: "<rect x=\"586.0\"")), circles = svg.components(separatedBy: "<circle cx=\"").dropFirst()
        #expect(!legendX.isEmpty && circles.allSatisfy { (Double($0.prefix { $0 != "\"" }) ?? 1e9) <= 570 })
        // The series without values has no legend entry; the second stage has a dashed marker and both are named.
        #expect(!svg.contains(">validation<") && svg.contains(">train<"))
        #expect(svg.components(separatedBy: "stroke-dasharray").count == 2 && svg.contains(">finetune<") && svg.contains(">warmup<"))
    }

    /// The PNG comes from librsvg (tools/setup installs librsvg2-2): a real PNG of twice the SVG's size.
    @Test func pngBesideSVG() throws {
        let svg = Plots.lines(title: "Loss", yLabel: "loss", series: [("train", [1.2, 0.8, 0.5])])
        let png = try Plots.png(svg)
        #expect(png.prefix(8) == Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]))
        let width = png[16..<20].reduce(0) { $0 << 8 | Int($1) }, height = png[20..<24].reduce(0) { $0 << 8 | Int($1) }
        #expect(width == 1560 && height == 760)
        #expect(throws: TrainError.self) { try Plots.png("<svg width=\"10\" height=\"10\"><unclosed") }
    }
}
