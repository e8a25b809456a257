import GraftTensor

extension Model {
    /// A Keras-like summary table: layer (type), output shape, parameter count (and inputs for functional
    /// models), ending with exactly the lines `Total params: N`, `Trainable params: N`, `Non-trainable params: N`.
    public func summary(lineLength: Int = 98) -> String {
        let functional = kerasClassName != "Sequential"
        var rows: [[String]] = []
        for node in nodes {
            if !functional && node.layer is InputLayer { continue }
            let connected = node.inputs.map { nodes[$0].layer.name }.joined(separator: ", ")
            var row = ["\(node.layer.name) (\(node.layer.kerasClassName))", Shape.describe([-1] + node.outputShape),
                       grouped(node.layer.parameterCount)]
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
