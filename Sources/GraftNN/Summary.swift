import GraftTensor

extension Model {
    /// A Keras-like summary table: layer (type), output shape, parameter count (and inputs for functional
    /// models), ending with exactly the lines `Total params: N`, `Trainable params: N`, `Non-trainable params: N`.
    public func summary(lineLength: Int = 98) -> String {
        let functional = kerasClassName != "Sequential"
        var rows: [[String]] = []
        // Graft's plumbing is not shown: a layer with several outputs lists their shapes, and a use of output k of
        // it reads `layer[k]`; masks are not inputs.
        var parts: [Int: [[Int]]] = [:]
        for node in nodes {
            if let p = node.layer as? OutputPart, let source = node.inputs.first { parts[source] = p.shapes }
        }
        func reference(_ j: Int) -> String {
            if let p = nodes[j].layer as? OutputPart, let source = nodes[j].inputs.first {
                return p.index == 0 ? nodes[source].layer.name : "\(nodes[source].layer.name)[\(p.index)]"
            }
            return nodes[j].layer.name
        }
        for (i, node) in nodes.enumerated() where !(node.layer is GraphPlumbing) {
            if !functional && node.layer is InputLayer { continue }
            let connected = node.inputs.filter { !(nodes[$0].layer is SequenceMask) }.map(reference).joined(separator: ", ")
            let shape = parts[i].map { "[" + $0.map { Shape.describe([-1] + $0) }.joined(separator: ", ") + "]" } ?? Shape.describe([-1] + node.outputShape)
            var row = ["\(node.layer.name) (\(node.layer.kerasClassName))", shape, grouped(node.layer.parameterCount)]
            if functional { row.append(connected) }
            rows.append(row)
        }
        var header = ["Layer (type)", "Output Shape", "Param #"]
        if functional { header.append("Connected to") }
        var widths = header.map(\.count)
        for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { $1.padding(toLength: widths[$0] + 2, withPad: " ", startingAt: 0) }
                .joined().trimmingTrailingSpaces()
        }
        let total = widths.reduce(0) { $0 + $1 + 2 }
        var out = ["Model: \"\(name)\"", String(repeating: "=", count: total), line(header), String(repeating: "=", count: total)]
        for r in rows { out.append(line(r)) }
        out.append(String(repeating: "=", count: total))
        let counts = parameterCounts
        out.append("Total params: \(grouped(counts.total))")
        out.append("Trainable params: \(grouped(counts.trainable))")
        out.append("Non-trainable params: \(grouped(counts.nonTrainable))")
        return out.joined(separator: "\n")
    }
}

/// 25636712 → "25,636,712", as Keras prints counts.
public func grouped(_ n: Int) -> String {
    let digits = String(abs(n))
    var out = ""
    for (i, ch) in digits.reversed().enumerated() {
        if i > 0 && i % 3 == 0 { out.append(",") }
        out.append(ch)
    }
    return (n < 0 ? "-" : "") + String(out.reversed())
}

extension String {
    func trimmingTrailingSpaces() -> String {
        var s = self
        while s.last == " " { s.removeLast() }
        return s
    }
}
