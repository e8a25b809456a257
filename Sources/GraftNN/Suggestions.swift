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
