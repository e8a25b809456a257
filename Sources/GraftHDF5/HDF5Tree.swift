extension HDF5File {
    /// Reads every attribute and every dataset in the file (numbers as Float, strings as strings), throwing the
    /// first error: a whole-file integrity check. Plain contiguous float32 datasets lying inside the file are only
    /// opened, not read: reading them is a bounded copy that cannot fault (`isPlainContiguousFloat32`), and they are
    /// nearly all of a checkpoint's bytes. Returns every string attribute as decoded, `object path@name` →
    /// values (what the checking child hands to the parent, see `HDF5Guard.setStringAttributes`).
    @discardableResult
    public func readEverything() throws -> [String: [String]] {
        var strings: [String: [String]] = [:]
        func readAttributes(_ object: HDF5Object) throws {
            for name in try object.attributeNames() {
                if case .string = try object.attributeInfo(name).type {
                    strings["\(object.path)@\(name)"] = try object.readStringsAttribute(name)
                } else {
                    _ = try HDF5Tree.attributeSummary(object, name)
                }
            }
        }
        var visited = HDF5VisitedGroups()
        func walk(_ group: HDF5Group) throws {
            guard visited.firstVisit(group) else { return }   // read once, however many links lead to it
            try readAttributes(group)
            for child in try group.children() {
                switch child.kind {
                case .group: try walk(try group.group(child.name))
                case .dataset:
                    let ds = try group.dataset(child.name)
                    try readAttributes(ds)
                    if ds.isPlainContiguousFloat32() {
                        continue    // reading it is one bounded copy (most Keras weights): see the doc comment
                    }
                    if try ds.dataType().isNumeric { _ = try ds.read(Float.self) } else { _ = try ds.readStrings() }
                default: break
                }
            }
        }
        try walk(try root())
        return strings
    }
}

/// Renders the object tree of an HDF5 file as indented text, as `graft inspect` prints it.
public enum HDF5Tree {
    /// One line per group (`name/`), dataset (`name  float32 (3, 3, 1, 8)`) and attribute (`@name = value`),
    /// indented two spaces per level. Attribute values are shortened to about `maxValueChars` characters.
    public static func render(_ file: HDF5File, maxValueChars: Int = 72) throws -> [String] {
        var lines: [String] = []
        var visited = HDF5VisitedGroups()
        let root = try file.root()
        _ = visited.firstVisit(root)
        lines.append("/")
        try renderAttributes(root, depth: 1, maxValueChars: maxValueChars, into: &lines)
        try renderChildren(root, depth: 1, maxValueChars: maxValueChars, visited: &visited, into: &lines)
        return lines
    }

    private static func renderChildren(_ group: HDF5Group, depth: Int, maxValueChars: Int, visited: inout HDF5VisitedGroups,
                                       into lines: inout [String]) throws {
        let pad = String(repeating: "  ", count: depth)
        for child in try group.children() {
            switch child.kind {
            case .group:
                let sub = try group.group(child.name)
                guard visited.firstVisit(sub) else {
                    lines.append("\(pad)\(printable(child.name))/  (another link to a group shown above)")
                    continue
                }
                lines.append("\(pad)\(printable(child.name))/")
                try renderAttributes(sub, depth: depth + 1, maxValueChars: maxValueChars, into: &lines)
                try renderChildren(sub, depth: depth + 1, maxValueChars: maxValueChars, visited: &visited, into: &lines)
            case .dataset:
                let ds = try group.dataset(child.name)
                var line = "\(pad)\(printable(child.name))  \(try ds.dataType()) \(HDF5Shape.describe(try ds.shape()))"
                let storage = ds.storage()
                if !storage.filters.isEmpty { line += "  [\(storage.filters.joined(separator: ", "))]" }
                lines.append(line)
                try renderAttributes(ds, depth: depth + 1, maxValueChars: maxValueChars, into: &lines)
            case .namedType, .other:
                lines.append("\(pad)\(printable(child.name))  (\(child.kind.rawValue))")
            }
        }
    }

    private static func renderAttributes(_ object: HDF5Object, depth: Int, maxValueChars: Int, into lines: inout [String]) throws {
        let pad = String(repeating: "  ", count: depth)
        for name in try object.attributeNames() {
            lines.append("\(pad)@\(printable(name)) = \(try attributeSummary(object, name, maxValueChars: maxValueChars))")
        }
    }

    /// A short rendering of one attribute's value.
    public static func attributeSummary(_ object: HDF5Object, _ name: String, maxValueChars: Int = 72) throws -> String {
        let info = try object.attributeInfo(name)
        let count = info.shape.reduce(1, *)
        switch info.type {
        case .string:
            let values = try object.readStringsAttribute(name)
            if info.shape.isEmpty, let only = values.first { return quote(only, max: maxValueChars) }
            return list(values.map { quote($0, max: 24) }, count: count, max: maxValueChars)
        case .float:
            let values = try object.readAttribute(name, as: Double.self)
            if info.shape.isEmpty, let only = values.first { return "\(only)" }
            return list(values.map { "\($0)" }, count: count, max: maxValueChars) + " \(info.type)"
        case .integer:
            let values = try object.readAttribute(name, as: Int64.self)
            if info.shape.isEmpty, let only = values.first { return "\(only)" }
            return list(values.map { "\($0)" }, count: count, max: maxValueChars) + " \(info.type)"
        case .other(let kind):
            return "<\(kind) \(HDF5Shape.describe(info.shape))>"
        }
    }

    /// `s` with control characters written as escapes (`\n`, `\t`, `\u{1B}`): names and strings read from a file
    /// reach the terminal as text, never as terminal commands or extra lines.
    public static func printable(_ s: String) -> String {
        guard s.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else { return s }
        var out = ""
        for u in s.unicodeScalars {
            switch u {
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                if u.properties.generalCategory == .control {
                    out += "\\u{" + String(u.value, radix: 16, uppercase: true) + "}"
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out
    }

    private static func quote(_ s: String, max: Int) -> String {
        let flat = printable(s)
        if flat.count <= max { return "\"\(flat)\"" }
        return "\"\(flat.prefix(max))…\" (\(s.count) chars)"
    }

    private static func list(_ items: [String], count: Int, max: Int) -> String {
        var shown: [String] = []
        var length = 2
        for item in items {
            if length + item.count + 2 > max && !shown.isEmpty { break }
            shown.append(item)
            length += item.count + 2
        }
        let more = items.count > shown.count ? ", …" : ""
        return "[" + shown.joined(separator: ", ") + more + "]" + (items.count > shown.count || items.count > 4 ? " (\(count) items)" : "")
    }
}
