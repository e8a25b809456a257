import Foundation

/// The order in which Keras 3 runs the calls of a Functional model, found as Keras finds it (`map_graph` and
/// `Function._run_through_graph` in keras/src/ops/function.py): a depth-first walk from the outputs through each
/// call's input tensors lists the calls inputs-first; walking that list backwards gives each call a depth (the
/// longest path to an output, raised to the deepest depth of the same layer's other calls); calls run by decreasing
/// depth, and within one depth in the order the walk first gave them a depth.
///
/// The order matters for masks only: Keras 3's MultiHeadAttention removes the masks of the tensors it takes while it
/// runs, so whether another layer on the same tensor sees its mask depends on which runs first.
enum KerasRunOrder {
    typealias TensorRef = KerasModelBuilder.TensorRef

    /// One call of one layer: the layer's node `node`.
    struct Call: Hashable { let layer: String; let node: Int }

    /// The tensors one Keras 3 inbound node takes, in Keras's order (`tree.flatten((args, kwargs))`): positional
    /// arguments in order, then keyword arguments by name; lists in order, dictionaries by key.
    static func inputs(of node: JSON) -> [TensorRef] {
        var out: [TensorRef] = []
        func walk(_ x: JSON) {
            if x["class_name"].string == "__keras_tensor__" {
                if let r = try? KerasModelBuilder.ref(x["config"]["keras_history"]) { out.append(r) }
            } else if let items = x.array {
                for item in items { walk(item) }
            } else if let object = x.object {
                for key in object.keys.sorted() { walk(x[key]) }
            }
        }
        walk(node["args"])
        walk(node["kwargs"])
        return out
    }

    /// The position of each call Keras runs, given each call's input tensors and the model's outputs. Calls the
    /// outputs do not need are left out; so are the inputs, which Keras does not run.
    static func positions(calls: [Call: [TensorRef]], outputs: [TensorRef]) -> [Call: Int] {
        func producer(_ r: TensorRef) -> Call { Call(layer: r.layer, node: r.node) }
        // The walk (iterative: a config can hold tens of thousands of layers), inputs-first.
        var finished = Set<Call>(), inProgress = Set<Call>()
        var walked: [Call] = []
        for output in outputs {
            var stack: [(call: Call, next: Int)] = [(producer(output), 0)]
            while let top = stack.last {
                let call = top.call
                if top.next == 0 {
                    if finished.contains(call) || inProgress.contains(call) { stack.removeLast(); continue }
                    inProgress.insert(call)
                }
                let ins = calls[call] ?? []
                if top.next < ins.count {
                    stack[stack.count - 1].next += 1
                    let parent = producer(ins[top.next])
                    if !finished.contains(parent) && !inProgress.contains(parent) { stack.append((parent, 0)) }
                    continue
                }
                stack.removeLast()
                inProgress.remove(call)
                finished.insert(call)
                walked.append(call)
            }
        }
        // Depths, in the order Keras's dictionary first holds each call.
        var depth: [Call: Int] = [:]
        var firstSeen: [Call] = []
        var layerDepth: [String: Int] = [:]
        func setDepth(_ c: Call, _ d: Int) {
            if depth[c] == nil { firstSeen.append(c) }
            depth[c] = d
        }
        for call in walked.reversed() {
            if depth[call] == nil { setDepth(call, 0) }
            let d = max(depth[call] ?? 0, layerDepth[call.layer] ?? 0)
            layerDepth[call.layer] = d
            depth[call] = d
            for r in calls[call] ?? [] {
                let parent = producer(r)
                guard finished.contains(parent) else { continue }
                setDepth(parent, max(d + 1, depth[parent] ?? 0))
            }
        }
        let runs = firstSeen.enumerated()
            .filter { !(calls[$0.element] ?? []).isEmpty }
            .sorted { (depth[$0.element] ?? 0, -$0.offset) > (depth[$1.element] ?? 0, -$1.offset) }
        var position: [Call: Int] = [:]
        for (k, run) in runs.enumerated() { position[run.element] = k }
        return position
    }
}
