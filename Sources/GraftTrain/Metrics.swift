/// Classification metrics over a set of predictions.
public struct ClassificationMetrics: Sendable, Codable, Equatable {
    public let classes: Int
    /// `confusion[true][predicted]`.
    public private(set) var confusion: [[Int]]
    public private(set) var topKHits = 0
    public let k: Int
    public private(set) var count = 0

    public init(classes: Int, topK k: Int = 5) {
        self.classes = classes
        self.k = k
        confusion = [[Int]](repeating: [Int](repeating: 0, count: classes), count: classes)
    }

    /// Adds a batch of scores `[N, classes]` (row-major) with their labels.
    public mutating func add(scores: [Float], labels: [Int]) {
        for (i, label) in labels.enumerated() {
            let row = scores[(i * classes)..<((i + 1) * classes)]
            var best = row.startIndex
            for j in row.indices where row[j] > row[best] { best = j }
            let predicted = best - row.startIndex
            if label >= 0 && label < classes { confusion[label][predicted] += 1 }
            let target = label >= 0 && label < classes ? row[row.startIndex + label] : -.infinity
            let higher = row.filter { $0 > target }.count
            if higher < k { topKHits += 1 }
            count += 1
        }
    }

    public var accuracy: Double {
        count == 0 ? 0 : Double((0..<classes).reduce(0) { $0 + confusion[$1][$1] }) / Double(count)
    }
    public var topKAccuracy: Double { count == 0 ? 0 : Double(topKHits) / Double(count) }

    /// Precision per class (nan where nothing was predicted as that class).
    public var precision: [Double] {
        (0..<classes).map { c in
            let predicted = (0..<classes).reduce(0) { $0 + confusion[$1][c] }
            return predicted == 0 ? .nan : Double(confusion[c][c]) / Double(predicted)
        }
    }

    /// Recall per class (nan where the class has no samples).
    public var recall: [Double] {
        (0..<classes).map { c in
            let actual = confusion[c].reduce(0, +)
            return actual == 0 ? .nan : Double(confusion[c][c]) / Double(actual)
        }
    }
}
