import Foundation

/// Checks on a recipe's text before the YAML parser sees it. YAML anchors and aliases (`&a`, `*a`) let a
/// kilobyte expand into billions of nodes (an alias bomb used as mapping keys kept the parser hashing for over a
/// minute); no recipe needs them, so they are refused with the line they are on. A recipe is at most 1 MiB.
enum RecipeText {
    static let maxBytes = 1 << 20

    /// The 1-based line of the first anchor or alias outside quotes and comments, or nil.
    static func firstAnchorOrAlias(_ text: String) -> Int? {
        for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var quote: Character?
            var previous: Character = " "   // the last character before this one, outside quotes
            var chars = Array(line)
            chars.append(" ")
            for i in 0..<(chars.count - 1) {
                let c = chars[i]
                if let q = quote {
                    if c == q { quote = nil }
                    previous = c
                    continue
                }
                if c == "#" && (previous == " " || previous == "\t" || i == 0) { break }   // a comment
                if c == "\"" || c == "'", " \t-:,[{?".contains(previous) || i == 0 { quote = c; previous = c; continue }
                // An anchor or alias begins a token: after a space, an indicator or the line's start.
                if (c == "&" || c == "*"), i == 0 || " \t-:,[{?".contains(previous), !" \t,]}".contains(chars[i + 1]) {
                    return n + 1
                }
                previous = c
            }
        }
        return nil
    }

    /// Throws when `text` is too long or holds an anchor or alias.
    static func check(_ text: String, file: String, key: String = "") throws {
        guard text.utf8.count <= maxBytes else {
            throw RecipeError(file: file, line: nil, key: key, message: "is \(text.utf8.count) bytes; a recipe may be at most 1 MiB")
        }
        if let line = firstAnchorOrAlias(text) {
            throw RecipeError(file: file, line: key.isEmpty ? line : nil, key: key,
                              message: "YAML anchors and aliases (&name, *name) are not accepted in recipes; write the values out")
        }
    }
}
