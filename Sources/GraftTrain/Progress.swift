import Foundation

/// A progress bar on stderr (`epoch 2/5 [=====>    ] 412/938 loss 0.4123 acc 0.8512 1843 img/s ETA 0:12`),
/// redrawn in place on a terminal and printed as plain lines (every ~10%, at most one per 2 s) when stderr is
/// not one.
public final class ProgressBar {
    let label: String
    let total: Int
    let start = Date()
    let isTerminal: Bool
    var lastPlain = -1
    var lastPlainTime = Date.distantPast
    public var enabled: Bool

    public init(label: String, total: Int, enabled: Bool = true) {
        self.label = label
        self.total = total
        self.enabled = enabled
        isTerminal = isatty(2) == 1
    }

    /// Shows step `done` of `total` with the running metrics and the images seen so far.
    public func update(_ done: Int, images: Int, metrics: [(String, Double)]) {
        guard enabled else { return }
        let elapsed = Date().timeIntervalSince(start)
        let rate = elapsed > 0 ? Double(images) / elapsed : 0
        let eta = done > 0 ? elapsed / Double(done) * Double(total - done) : 0
        let shown = metrics.map { "\($0.0) \(String(format: "%.4f", $0.1))" }.joined(separator: " ")
        let stats = "\(done)/\(total) \(shown) \(Int(rate)) img/s ETA \(ProgressBar.clock(eta))"
        if isTerminal {
            let width = 24
            let filled = total > 0 ? width * done / total : width
            let bar = String(repeating: "=", count: max(0, filled - 1)) + (filled > 0 ? ">" : "") + String(repeating: " ", count: width - filled)
            FileHandle.standardError.write(Data("\r\(label) [\(bar)] \(stats)\u{1B}[K".utf8))
            if done == total { FileHandle.standardError.write(Data("\n".utf8)) }
        } else {
            // Every ~10%, at most one line per 2 s, so logs of short epochs are not a line per batch.
            let decile = total > 0 ? done * 10 / total : 10
            let now = Date()
            if (decile != lastPlain || done == total) && now.timeIntervalSince(lastPlainTime) >= 2 {
                lastPlain = decile
                lastPlainTime = now
                FileHandle.standardError.write(Data("\(label) \(stats)\n".utf8))
            }
        }
    }

    static func clock(_ s: Double) -> String {
        let t = Int(s.rounded())
        return t >= 3600 ? String(format: "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60) : String(format: "%d:%02d", t / 60, t % 60)
    }
}
