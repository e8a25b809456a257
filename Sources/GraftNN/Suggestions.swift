import GraftCore
/// "Did you mean …" for a mistyped name: the closest of the names a user could have meant.
public enum Suggestions {
    /// The name in `names` nearest to `word` (case, `-` and `_` ignored; at most two letters added, dropped or
    /// changed, or `word` a prefix of it), or nil when none is that close.
    public static func closest(to word: String, among names: [String]) -> String? {
        func key(_ s: String) -> [Character] { Array(s.lowercased().filter { $0 != "-" && $0 != "_" }) }
        let w = key(word)
        guard !w.isEmpty else { return nil }
        var best: (name: String, distance: Int)?
        for name in names {
            let n = key(name)
            let d = n.starts(with: w) && w.count >= 3 ? 1 : distance(w, n)
            if d <= 2, d < best?.distance ?? .max { best = (name, d) }
        }
        return best?.name
    }

    /// `; did you mean NAME?` for the name in `names` nearest to `word`, or nothing when none is close.
    public static func didYouMean(_ word: String, among names: [String]) -> String {
        closest(to: word, among: names).map { "; did you mean \($0)?" } ?? ""
    }

    /// `text` as one of a few named values (`--nan stop|skip`, a recipe's `batch_norm`), or an error listing them with
    /// the nearest: `must be inference or train; did you mean train?`.
    public static func choice<T: RawRepresentable & CaseIterable>(_ text: String, of _: T.Type) throws -> T where T.RawValue == String {
        if let v = T(rawValue: text) { return v }
        let names = T.allCases.map(\.rawValue)
        throw ChoiceError(description: "must be \(names.dropLast().joined(separator: ", ")) or \(names.last ?? "")\(didYouMean(text, among: names))")
    }

    /// Levenshtein distance.
    static func distance(_ a: [Character], _ b: [Character]) -> Int {
        var row = Array(0...b.count)
        for (i, ca) in a.enumerated() {
            var previous = row[0]
            row[0] = i + 1
            for (j, cb) in b.enumerated() {
                let current = row[j + 1]
                row[j + 1] = min(row[j + 1] + 1, row[j] + 1, previous + (ca == cb ? 0 : 1))
                previous = current
            }
        }
        return row[b.count]
    }
}

/// A value that is none of the names it may be (`Suggestions.choice`); the message names them.
public struct ChoiceError: GraftError {
    public let description: String
    /// The place that reads the value adds its key (a recipe key or an option).
    public var context: ErrorContext { ErrorContext() }
}
